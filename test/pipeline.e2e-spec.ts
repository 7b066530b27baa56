import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { ImgproxySigner } from '../src/signing/imgproxy-signature';
import { UsageService } from '../src/usage/usage.service';
import { TestBackend, startBackend, waitFor } from './support/http-backends';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, TenantWithKeyOptions, UNLIMITED, createTenantWithKey } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

/**
 * The request pipeline of docs/proxy-and-backends.md on the real header-mode route `/i/*` (real PostgreSQL, Redis
 * and an HTTP backend): each step refuses in its turn, before any backend call, and a good
 * request crosses them all and reaches the pool re-signed and sandboxed, costing no PostgreSQL
 * query once its key is cached.
 */
const POOL_KEY = randomBytes(32).toString('hex');
const POOL_SALT = randomBytes(32).toString('hex');
const POOL_SECRET = 'pool-secret-for-imgproxy';
const OPTIONS = '/rs:fit:100:100';
const IMAGE = `/i/insecure${OPTIONS}/plain/local:///cat.png`;

describe('request pipeline on /i/* (auth → allowlist → rate limits → quota → proxy)', () => {
  let backend: TestBackend;
  let gw: TestApp;

  beforeAll(async () => {
    backend = await startBackend({
      name: 'pool',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
        res.end('png-bytes');
      },
    });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        imgproxy: { key: POOL_KEY, salt: POOL_SALT, secret: POOL_SECRET },
        backends: [{ name: 'pool', url: backend.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
        // Background writers parked, so a PostgreSQL query seen during a request is the request's.
        proxy: { backendsReloadSeconds: 3600 },
        usage: { flushIntervalSeconds: 3600 },
        security: { lastUsedFlushSeconds: 3600 },
        requestLogs: { flushIntervalMs: 3_600_000 },
      },
    });
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  const tenantWith = (options: TenantWithKeyOptions = {}) => createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED, ...options });
  const fetchImage = (tenant: TenantWithKey | undefined, path = IMAGE) => gw.fetch(path, { headers: tenant ? { 'x-api-key': tenant.key } : {} });

  /** The exact path the pool must receive for IMAGE: the tenant's folder, signed with the pool's key. */
  const upstreamPathOf = (tenant: TenantWithKey) =>
    new ImgproxySigner(POOL_KEY, POOL_SALT).signPath(`${OPTIONS}/plain/local:///tenants/${tenant.tenantId}/cat.png`);

  async function refused(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
    expect(res.status).toBe(status);
    const { error } = await res.json();
    expect(error.code).toBe(code);
    return error;
  }

  async function metric(name: string, labels: string): Promise<number> {
    const text = await (await gw.fetch('/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  it('answers 401 without a valid key before the URL is even read, and calls no backend', async () => {
    const before = backend.hits;
    const missing = await fetchImage(undefined);
    await refused(missing, 401, 'unauthorized');
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="imgproxy-gateway"');
    await refused(await gw.fetch(IMAGE, { headers: { 'x-api-key': `igw_${'A'.repeat(12)}_${'b'.repeat(32)}` } }), 401, 'unauthorized');
    // A URL that would be a 400 bad_source for a tenant is a 401 without a key: authentication comes first.
    await refused(await fetchImage(undefined, '/i/insecure/plain/local:///../escape.png'), 401, 'unauthorized');
    expect(backend.hits).toBe(before);
  });

  it('answers 403 forbidden to a key without images:read, before the tenant rate limit', async () => {
    const tenant = await tenantWith({ scopes: ['usage:read'], rateLimits: { perMinute: 1 } });
    const before = backend.hits;
    // Three requests against a limit of one: the scope check refuses each before a token is spent.
    for (let i = 0; i < 3; i++) {
      expect(await refused(await fetchImage(tenant), 403, 'forbidden')).toMatchObject({ requiredScope: 'images:read' });
    }
    expect(backend.hits).toBe(before);
    // The same tenant's other key, with the scope, still finds its one token.
    const reader = await gw.admin(`/admin/v1/tenants/${tenant.tenantId}/keys`, { method: 'POST', json: { scopes: ['images:read'] } });
    expect((await fetchImage({ ...tenant, key: (await reader.json()).key })).status).toBe(200);
  });

  it('answers 403 ip_not_allowed outside the tenant allowlist, before the tenant rate limit', async () => {
    const tenant = await tenantWith({ rateLimits: { perMinute: 1 } });
    const put = await gw.admin(`/admin/v1/tenants/${tenant.tenantId}/ip-allowlist`, { method: 'PUT', json: { entries: [{ cidr: '203.0.113.0/24' }] } });
    expect(put.status).toBe(200);
    const before = backend.hits;
    for (let i = 0; i < 3; i++) await refused(await fetchImage(tenant), 403, 'ip_not_allowed');
    expect(backend.hits).toBe(before);
    // Allowing the test client's address: the one token was never spent by the refusals.
    const allow = await gw.admin(`/admin/v1/tenants/${tenant.tenantId}/ip-allowlist`, { method: 'PUT', json: { entries: [{ cidr: '127.0.0.1' }] } });
    expect(allow.status).toBe(200);
    await waitFor('the allowlist change to apply', async () => (await fetchImage(tenant)).status === 200);
  });

  it('answers 429 rate_limited with the rate-limit headers once the tenant limit is spent', async () => {
    const tenant = await tenantWith({ rateLimits: { perMinute: 2 } });
    const before = backend.hits;
    expect((await fetchImage(tenant)).status).toBe(200);
    expect((await fetchImage(tenant)).status).toBe(200);
    const res = await fetchImage(tenant);
    expect(await refused(res, 429, 'rate_limited')).toMatchObject({ scope: 'tenant', retryAfter: expect.any(Number) });
    expect(res.headers.get('x-ratelimit-limit')).toBe('2');
    expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.headers.get('ratelimit-policy')).toContain('"tenant";q=2;w=60');
    expect(res.headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=\d+$/);
    // The second was a cache hit: counted by the limit like the first, without a backend call.
    expect(backend.hits - before).toBe(1);
  });

  it('answers 429 quota_exceeded with the quota headers once the monthly requests are used', async () => {
    const tenant = await tenantWith({ quotas: { monthlyRequests: 2 } });
    const before = backend.hits;
    const first = await fetchImage(tenant);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-quota-remaining')).toBe('1');
    expect((await fetchImage(tenant)).status).toBe(200);
    // Counted after each response; wait until both are in the shared counters.
    await gw.app.get(UsageService).settled();
    await waitFor('both requests to be counted', async () => {
      const report = await (await gw.admin(`/admin/v1/tenants/${tenant.tenantId}/usage`)).json();
      return report.totals.requests === 2;
    });
    const res = await fetchImage(tenant);
    expect(await refused(res, 429, 'quota_exceeded')).toMatchObject({ quota: 'monthlyRequests' });
    expect(res.headers.get('x-quota-limit')).toBe('2');
    expect(res.headers.get('x-quota-remaining')).toBe('0');
    expect(Number(res.headers.get('x-quota-reset'))).toBeGreaterThan(0);
    // The quota is checked after the rate limits: their headers are on the refusal too.
    expect(res.headers.get('x-ratelimit-limit')).not.toBeNull();
    // The second was a cache hit, counted against the quota all the same.
    expect(backend.hits - before).toBe(1);
  });

  it('serves a good request from the pool: sandboxed, re-signed, without the caller’s credentials, with limit headers', async () => {
    const tenant = await tenantWith();
    const res = await gw.fetch(IMAGE, { headers: { 'x-api-key': tenant.key, cookie: 'session=abc', 'x-request-id': 'pipeline-good' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('png-bytes');
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('x-request-id')).toBe('pipeline-good');
    // The backend's response, not the gateway's: no gateway cache or content policy added to it.
    expect(res.headers.get('cache-control')).toBeNull();
    expect(res.headers.get('content-security-policy')).toBeNull();
    for (const name of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'ratelimit-policy', 'ratelimit']) {
      expect(res.headers.get(name)).not.toBeNull();
    }
    expect(res.headers.get('ratelimit-policy')).toContain(`"tenant";q=${UNLIMITED.rateLimits!.perMinute};w=60`);
    expect(res.headers.get('x-quota-limit')).toBe(String(UNLIMITED.quotas!.monthlyRequests));
    expect(res.headers.get('x-quota-remaining')).toBe(String(UNLIMITED.quotas!.monthlyRequests! - 1));
    expect(Number(res.headers.get('x-quota-reset'))).toBeGreaterThan(0);

    const seen = backend.imageRequests.at(-1)!;
    expect(seen.url).toBe(upstreamPathOf(tenant));
    expect(seen.url).not.toContain('insecure');
    expect(seen.headers.authorization).toBe(`Bearer ${POOL_SECRET}`);
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(JSON.stringify(seen.headers)).not.toContain(tenant.key.slice(-32));
    expect(seen.headers['x-request-id']).toBe('pipeline-good');
  });

  it('makes no PostgreSQL query for a request whose key is cached', async () => {
    const tenant = await tenantWith();
    // Every query the gateway makes goes through pg's Client#query (TypeORM's driver included).
    const queries: string[] = [];
    const original = Client.prototype.query;
    const spy = jest.spyOn(Client.prototype, 'query').mockImplementation(function (this: Client, ...args: unknown[]) {
      const config = args[0] as string | { text?: string } | undefined;
      queries.push(typeof config === 'string' ? config : String(config?.text));
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original);
    try {
      // The first request loads the key (and its allowlist) and seeds the tenant's month view.
      expect((await fetchImage(tenant)).status).toBe(200);
      await gw.app.get(UsageService).settled();
      // The spy does see the gateway's queries: that miss looked the key up.
      expect(queries.some((sql) => /\bFROM api_keys\b/.test(sql))).toBe(true);
      const lookups = await metric('gateway_auth_key_lookups_total', 'result="found"');

      queries.length = 0;
      const before = backend.hits;
      // Twenty images, so each request goes the whole way to the pool (none is a cache hit).
      for (let i = 0; i < 20; i++) expect((await fetchImage(tenant, IMAGE.replace('cat.png', `cat-${i}.png`))).status).toBe(200);
      await gw.app.get(UsageService).settled();
      expect(backend.hits - before).toBe(20);
      expect(queries).toEqual([]);
      // The gateway's own count of key lookups agrees: none for the 20 cached requests.
      expect(await metric('gateway_auth_key_lookups_total', 'result="found"')).toBe(lookups);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('failed authentication spends the client IP budget', () => {
  let backend: TestBackend;
  let gw: TestApp;

  beforeAll(async () => {
    backend = await startBackend({ name: 'pool', handler: (_req, res) => res.end('ok') });
    gw = await createTestApp({
      config: {
        rateLimit: { ip: { perMinute: 5 }, routes: { proxy: { perMinute: 100_000 } } },
        backends: [{ name: 'pool', url: backend.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
      },
    });
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  it('turns wrong secrets for a cached key id, missing keys and bad signatures into 429 once the IP is over its limit', async () => {
    const tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
    // One good request: the key is now cached (it spent one of the five IP tokens on its lookup).
    expect((await gw.fetch(IMAGE, { headers: { 'x-api-key': tenant.key } })).status).toBe(200);

    const wrongSecret = `igw_${tenant.keyId}_${'x'.repeat(32)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await gw.fetch(IMAGE, { headers: { 'x-api-key': wrongSecret } })).status);
    // The four remaining tokens (one more if a token refilled meanwhile) answer 401, then 429.
    const unauthorized = statuses.filter((s) => s === 401).length;
    expect(unauthorized).toBeGreaterThanOrEqual(4);
    expect(unauthorized).toBeLessThanOrEqual(5);
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses[statuses.length - 1]).toBe(429);

    const missing = await gw.fetch(IMAGE);
    expect(missing.status).toBe(429);
    expect((await missing.json()).error).toMatchObject({ code: 'rate_limited', scope: 'ip' });
    expect(missing.headers.get('retry-after')).toMatch(/^\d+$/);
    const badSignature = await gw.fetch(`/t/${tenant.keyId}/${'A'.repeat(43)}${OPTIONS}/plain/local:///cat.png`);
    expect(badSignature.status).toBe(429);
  });
});
