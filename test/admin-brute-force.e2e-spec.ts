import { connect } from 'node:net';
import { TestApp, createTestApp } from './support/test-app';
import { metricValue } from './support/metrics';

/**
 * Guessing the admin token costs what guessing a tenant key costs (docs/architecture.md, Admin
 * API): every wrong token is counted and charged to the client IP's bucket, 429 after the limit,
 * and it is refused from the headers alone, before the body is read.
 */

/** Sends the request head and only `bodyPart` of a declared body; resolves with what came back within `waitMs`. */
function headOnly(url: string, head: string, bodyPart = '', waitMs = 3_000): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(head + bodyPart);
  });
}

describe('admin token guessing (ip bucket of 5 per minute)', () => {
  let gw: TestApp;
  const wrong = { authorization: 'Bearer not-the-admin-token-0000' };
  const failures = () => metricValue(gw, 'gateway_auth_failures_total', 'reason="admin_token"');

  beforeAll(async () => {
    gw = await createTestApp({ config: { rateLimit: { ip: { perMinute: 5 } } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('refuses a wrong token from the headers, before a 1 MB body has arrived', async () => {
    const before = await failures();
    const head =
      'POST /admin/v1/tenants HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer wrong-token-0123456789\r\n' +
      'Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n';
    const answer = await headOnly(gw.url, head, '{"name":"');
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toMatch(/\r\nwww-authenticate: Bearer realm="admin"\r\n/i);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer).toContain('"code":"unauthorized"');
    expect((await failures()) - before).toBe(1);
  });

  it('counts every wrong or missing token and answers 429 scope ip once the bucket is empty', async () => {
    const before = await failures();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await gw.fetch('/admin/v1/tenants', { headers: i === 0 ? {} : wrong })).status);
    expect(statuses).toEqual([401, 401, 401, 401]);

    const limited = await gw.fetch('/admin/v1/tenants', { headers: wrong });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await limited.json()).error).toMatchObject({ code: 'rate_limited', scope: 'ip' });
    expect((await failures()) - before).toBe(5);
  });

  it('charges a wrong token on /health/backends too, while the public report stays open', async () => {
    expect((await gw.fetch('/health/backends', { headers: wrong })).status).toBe(429);
    expect((await gw.fetch('/health/backends')).status).toBe(200);
  });

  it('still lets the right token in from the same address', async () => {
    expect((await gw.admin('/admin/v1/tenants')).status).toBe(200);
  });
});
