import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { TestApp, createTestApp } from './support/test-app';
import { TestBackend, rawRequest, startBackend } from './support/http-backends';
import { metricValue } from './support/metrics';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';

/**
 * Headers that state facts pass only when the gateway itself knows them (docs/proxy-and-backends.md,
 * Headers): client-address headers a client sent are replaced, a backend's cookies stay behind,
 * every image answer forbids type sniffing, and a reply that is not HTTP is called what it is.
 */
describe('headers the gateway vouches for', () => {
  let backend: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    backend = await startBackend({
      name: 'cookie-setter',
      handler: (_req, res) => {
        res.setHeader('content-type', 'image/png');
        res.setHeader('set-cookie', ['session=backend-session; Path=/', 'tracking=1']);
        res.end('png');
      },
    });
    gw = await createTestApp({
      config: { ...HIGH_RATE_LIMIT_CONFIG, backends: [{ name: backend.name, url: backend.url, weight: 1 }], healthCheck: { intervalSeconds: 3600 } },
    });
    tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  it('replaces forged client-address headers with the address the gateway saw', async () => {
    const res = await rawRequest(gw.url, '/i/insecure/plain/local:///who.jpg', {
      headers: {
        'x-api-key': tenant.key,
        'x-real-ip': '6.6.6.6',
        'true-client-ip': '6.6.6.7',
        'cf-connecting-ip': '6.6.6.8',
        'x-client-ip': '6.6.6.9',
      },
    });
    expect(res.status).toBe(200);
    const seen = backend.imageRequests.at(-1)!.headers;
    expect(seen['x-real-ip']).toBe('127.0.0.1');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['true-client-ip']).toBeUndefined();
    expect(seen['cf-connecting-ip']).toBeUndefined();
    expect(seen['x-client-ip']).toBeUndefined();
  });

  it("never passes a backend's Set-Cookie, and marks every image nosniff", async () => {
    const res = await rawRequest(gw.url, '/i/insecure/plain/local:///cookie.jpg', { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('a backend that does not speak HTTP', () => {
  let garbage: Server;
  let gw: TestApp;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    // Answers everything, health checks included, with bytes that are not an HTTP response.
    garbage = createServer((socket) => socket.once('data', () => socket.end('NOT HTTP AT ALL\r\n\r\n')));
    garbage.listen(0, '127.0.0.1');
    await once(garbage, 'listening');
    const url = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
    gw = await createTestApp({
      config: { ...HIGH_RATE_LIMIT_CONFIG, backends: [{ name: 'garbled', url, weight: 1 }], healthCheck: { intervalSeconds: 3600 } },
    });
    tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
  });
  afterAll(async () => {
    await gw.close();
    await new Promise((resolve) => garbage.close(resolve));
  });

  it('answers 502 and counts a protocol failure, not a connect failure', async () => {
    const res = await gw.fetch('/i/insecure/plain/local:///x.jpg', { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(502);
    expect((await res.json()).error.code).toBe('bad_gateway');
    expect(await metricValue(gw, 'gateway_upstream_failures_total', 'backend="garbled",kind="protocol"')).toBe(1);
    expect(await metricValue(gw, 'gateway_upstream_failures_total', 'backend="garbled",kind="connect"')).toBe(0);
  });
});
