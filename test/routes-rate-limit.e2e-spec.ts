import { TestBackend, rawRequest, startBackend } from './support/http-backends';
import { errorOf } from './support/routes';
import { TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

/**
 * A configured route's own `rateLimit` (docs/routes.md "Limits"), end to end on the real Redis:
 * per caller by default (the tenant on an authenticated route, the client IP on an open one),
 * 429 `rate_limited` with scope `route`; `by: route` one capacity bucket for every caller, 503
 * `unavailable` with Retry-After once empty; consumed in the same atomic call as the tenant's
 * buckets, so a request one bucket refuses costs the others nothing.
 */
describe('per-route rate limits (e2e)', () => {
  let app: TestBackend;
  let gw: TestApp;
  let alice: TenantWithKey;
  let bob: TenantWithKey;
  const as = (tenant: TenantWithKey, path: string) => rawRequest(gw.url, path, { headers: { 'x-api-key': tenant.key } });
  const from = (ip: string, path: string) => rawRequest(gw.url, path, { headers: { 'x-forwarded-for': ip } });

  beforeAll(async () => {
    app = await startBackend({ name: 'app' });
    gw = await createTestApp({
      config: {
        rateLimit: { ip: { perMinute: 100_000 }, routes: { proxy: { perMinute: 100_000 } } },
        // Open-route callers are told apart by the address a trusted proxy (the test) names.
        server: { trustedProxies: ['127.0.0.1/32'] },
        upstreams: { app: { backends: [{ name: app.name, url: app.url }] } },
        routes: [
          { name: 'per-tenant', path: '/per-tenant/*', upstream: 'app', auth: 'api-key', rateLimit: { perMinute: 3 } },
          { name: 'per-ip', path: '/per-ip/*', upstream: 'app', auth: 'none', rateLimit: { perMinute: 3 } },
          { name: 'capacity', path: '/capacity/*', upstream: 'app', auth: 'api-key', rateLimit: { perMinute: 3, by: 'route' } },
          { name: 'narrow', path: '/narrow/*', upstream: 'app', auth: 'api-key', rateLimit: { perMinute: 2 } },
          { name: 'unlimited', path: '/unlimited/*', upstream: 'app', auth: 'api-key' },
        ],
      },
    });
    alice = await createTenantWithKey(gw, { ...UNLIMITED });
    bob = await createTenantWithKey(gw, { ...UNLIMITED });
  });

  afterAll(async () => {
    await gw?.close();
    await app?.stop();
  });

  it('limits each tenant on the route on its own: 429 rate_limited, scope route, with Retry-After', async () => {
    for (let i = 0; i < 3; i++) expect((await as(alice, '/per-tenant/x')).status).toBe(200);
    const before = app.hits;
    const refused = await as(alice, '/per-tenant/x');
    expect([refused.status, errorOf(refused).code, errorOf(refused).scope]).toEqual([429, 'rate_limited', 'route']);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(app.hits).toBe(before);
    // Another tenant has its own bucket on the route.
    for (let i = 0; i < 3; i++) expect((await as(bob, '/per-tenant/x')).status).toBe(200);
    expect((await as(bob, '/per-tenant/x')).status).toBe(429);
    // The limit is the route's: the same tenant elsewhere is not held back.
    expect((await as(alice, '/unlimited/x')).status).toBe(200);
  });

  it('limits each client IP on an open route', async () => {
    for (let i = 0; i < 3; i++) expect((await from('198.51.100.1', '/per-ip/x')).status).toBe(200);
    const refused = await from('198.51.100.1', '/per-ip/x');
    expect([refused.status, errorOf(refused).code, errorOf(refused).scope]).toEqual([429, 'rate_limited', 'route']);
    expect((await from('198.51.100.2', '/per-ip/x')).status).toBe(200);
  });

  it('shares one capacity bucket among every caller with by: route, and answers 503 unavailable when it is empty', async () => {
    const statuses = [];
    for (const tenant of [alice, bob, alice]) statuses.push((await as(tenant, '/capacity/x')).status);
    expect(statuses).toEqual([200, 200, 200]);
    for (const tenant of [bob, alice]) {
      const refused = await as(tenant, '/capacity/x');
      expect([refused.status, errorOf(refused).code]).toEqual([503, 'unavailable']);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(errorOf(refused).retryAfter).toBe(Number(refused.headers['retry-after']));
    }
  });

  it('takes nothing from the tenant’s own buckets for a request the route bucket refused (one atomic call)', async () => {
    const carol = await createTenantWithKey(gw, { rateLimits: { perMinute: 5, perHour: 1000 }, quotas: UNLIMITED.quotas });
    expect((await as(carol, '/narrow/x')).status).toBe(200);
    expect((await as(carol, '/narrow/x')).status).toBe(200);
    for (let i = 0; i < 4; i++) expect(errorOf(await as(carol, '/narrow/x')).scope).toBe('route');
    // Five a minute: two spent on /narrow, three left however many /narrow refused.
    for (let i = 0; i < 3; i++) expect((await as(carol, '/unlimited/x')).status).toBe(200);
    const tenantLimited = await as(carol, '/unlimited/x');
    expect([tenantLimited.status, errorOf(tenantLimited).scope]).toEqual([429, 'tenant']);
  });
});
