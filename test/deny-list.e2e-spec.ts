import { connect } from 'node:net';
import { TestApp, createTestApp } from './support/test-app';
import { metricValue } from './support/metrics';

/**
 * The global deny list answers in the first request hook (docs/tenants-and-keys.md, Global deny
 * list): on every path, routed by Nest, by a Fastify plugin (Swagger) or by nobody, and before
 * any body is read. The gateway sits behind a trusted proxy here, so the test's own requests
 * (no X-Forwarded-For) stay allowed while a forwarded client is denied.
 */
describe('global deny list, before routing and before the body', () => {
  let gw: TestApp;
  const denied = { 'x-forwarded-for': '198.51.100.7' };
  const deniedCount = () => metricValue(gw, 'gateway_ip_denied_total', 'reason="deny_list"');

  beforeAll(async () => {
    gw = await createTestApp({
      config: { server: { trustedProxies: ['127.0.0.1/32'] }, security: { ipDenyList: ['198.51.100.0/24'] }, rateLimit: { ip: { perMinute: 100_000 } } },
    });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('refuses Swagger, its JSON and unmatched paths, with the request id and the metric', async () => {
    const before = await deniedCount();
    for (const path of ['/docs', '/docs-json', '/docs/static/index.html', '/no/such/path', '/health/live']) {
      const res = await gw.fetch(path, { headers: { ...denied, 'x-request-id': 'denied-1' } });
      expect(res.status).toBe(403);
      expect(res.headers.get('x-request-id')).toBe('denied-1');
      expect((await res.json()).error).toEqual({ code: 'ip_not_allowed', message: expect.any(String), requestId: 'denied-1' });
    }
    expect((await deniedCount()) - before).toBe(5);
    expect((await gw.fetch('/docs-json')).status).toBe(200);
  });

  it('answers before a declared body has been sent, and closes the connection', async () => {
    const { port } = new URL(gw.url);
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      const timer = setTimeout(() => socket.destroy(), 3_000);
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(received);
      });
      socket.write(
        'POST /admin/v1/tenants HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 198.51.100.7\r\n' +
          'Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"name":"',
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer).toContain('"code":"ip_not_allowed"');
  });
});
