/**
 * Rate limits end to end (docs/proxy-and-backends.md, docs/rate-limits-and-quotas.md) on the real gateway, PostgreSQL and Redis: exact limits
 * across two instances, the IP limit before key lookups, exact headers, all-or-nothing
 * consumption, the store-failure policies against a Redis we kill, and the Redis round trips a
 * request costs.
 */
import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { randomBase62 } from '../src/auth/api-key-format';
import { ApiKeyService } from '../src/auth/api-key.service';
import { ADMIT_SCRIPT } from '../src/rate-limit/admission.scripts';
import { RedisService } from '../src/redis/redis.service';
import { USAGE_SETTLE } from '../src/usage/usage.scripts';
import { UsageService } from '../src/usage/usage.service';
import { ImgproxySigner } from '../src/signing/imgproxy-signature';
import { OwnRedis, type Tenant, createProbedApp, createTenant } from './quota-probe';
import { type TestBackend, startBackend } from './support/http-backends';
import { createTenantWithKey } from './support/tenants';
import { type TestApp, createTestApp } from './support/test-app';

const roomyIp = { rateLimit: { ip: { perMinute: 1_000_000 } } };
const probe = (gw: TestApp, tenant: Tenant, query = '') => gw.fetch(`/probe${query}`, { headers: { 'x-api-key': tenant.key } });

/** Polls `check` (never a fixed sleep), failing after `deadlineMs`. */
async function eventually(check: () => Promise<boolean>, deadlineMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > deadlineMs) throw new Error(`condition not met within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('rate limits across two instances', () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await createProbedApp({ config: roomyIp });
    b = await createProbedApp({ config: roomyIp, database: a.database, redisPrefix: a.redisPrefix });
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  it('admits exactly 30 of 50 simultaneous requests for a 30/min tenant, spread over both instances', async () => {
    const tenant = await createTenant(a, { rateLimits: { perMinute: 30 } });
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => probe(i % 2 ? b : a, tenant)));
    const admitted = responses.filter((res) => res.status === 200).length;
    // One token refills every 2 s: a run slower than that may admit one more.
    expect(admitted).toBeGreaterThanOrEqual(30);
    expect(admitted).toBeLessThanOrEqual(31);
    const refused = responses.filter((res) => res.status === 429);
    expect(refused).toHaveLength(50 - admitted);
    const body = await refused[0].json();
    expect(body.error).toMatchObject({ code: 'rate_limited', scope: 'tenant', retryAfter: expect.any(Number) });
  });

  it('sets exact headers on admitted and refused responses', async () => {
    const tenant = await createTenant(a, { rateLimits: { perMinute: 10, perHour: 100 } });
    const first = await probe(a, tenant);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit')).toBe('10');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('9');
    // One token of a 10/min bucket refills in 6 s: the bucket is full again then.
    expect(first.headers.get('x-ratelimit-reset')).toBe('6');
    // The caller's own buckets only: the IP bucket guards the pre-authentication path, and the
    // route's capacity is shared by every tenant (telling its level would tell others' traffic).
    expect(first.headers.get('ratelimit-policy')).toBe('"tenant";q=10;w=60, "tenant-hour";q=100;w=3600');
    expect(first.headers.get('ratelimit')).toBe('"tenant";r=9;t=6');
    expect(first.headers.get('retry-after')).toBeNull();

    for (let i = 0; i < 9; i++) expect((await probe(i % 2 ? a : b, tenant)).status).toBe(200);
    const refused = await probe(b, tenant);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('6');
    expect(refused.headers.get('x-ratelimit-limit')).toBe('10');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=\d+$/);
    expect(refused.headers.get('ratelimit-policy')).toContain('"tenant";q=10;w=60');
    expect(await refused.json()).toEqual({
      error: { code: 'rate_limited', message: expect.any(String), requestId: refused.headers.get('x-request-id'), scope: 'tenant', retryAfter: 6 },
    });
  });

  it('rate limits the usage API too, and never counts rate-limited requests as usage', async () => {
    const tenant = await createTenant(a, { rateLimits: { perMinute: 3 } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await probe(i % 2 ? a : b, tenant)).status);
    for (let i = 0; i < 4; i++) statuses.push((await probe(i % 2 ? a : b, tenant)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429]);
    // Each instance writes its own counts to PostgreSQL.
    await Promise.all([a.app.get(UsageService).flush(), b.app.get(UsageService).flush()]);
    // The usage call itself is a tenant request: its bucket is empty as well.
    const limited = await a.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } });
    expect(limited.status).toBe(429);
    const report = await (await a.admin(`/admin/v1/tenants/${tenant.id}/usage`)).json();
    expect(report.totals.requests).toBe(3);
  });
});

describe('IP limit', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createProbedApp({ config: { rateLimit: { ip: { perMinute: 5 } } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('cuts a flood of random keys from one address before it reaches the database', async () => {
    const keys = gw.app.get(ApiKeyService);
    const lookupsBefore = keys.stats().databaseLookups;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await gw.fetch('/api/v1/me', { headers: { 'x-api-key': `igw_${randomBase62(12)}_${randomBase62(32)}` } });
      statuses.push(res.status);
      if (res.status === 429) expect((await res.json()).error).toMatchObject({ code: 'rate_limited', scope: 'ip' });
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual(Array(15).fill(429));
    expect(keys.stats().databaseLookups - lookupsBefore).toBe(5);
  });
});

describe('the IP bucket guards the pre-authentication path only', () => {
  let backend: TestBackend;
  let gw: TestApp;
  const image = '/rs:fit:100:100/plain/local:///cat.png';

  beforeAll(async () => {
    backend = await startBackend({
      name: 'pool',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
        res.end('png-bytes');
      },
    });
    // The default IP bucket (100/min) and plan (1000/min): nothing raised for the test.
    gw = await createTestApp({ config: { backends: [{ name: 'pool', url: backend.url, weight: 1 }], healthCheck: { intervalSeconds: 3600 } } });
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  it('lets 150 signed thumbnails and 150 keyed requests from one address through, within the plan', async () => {
    const tenant = await createTenantWithKey(gw, { scopes: ['images:read'] });
    const signed = `/t/${tenant.keyId}${new ImgproxySigner(tenant.signingKey, tenant.signingSalt).signPath(image)}`;
    // A gallery page: the browser loads its thumbnails at once.
    const thumbnails = await Promise.all(Array.from({ length: 150 }, () => gw.fetch(signed)));
    expect(thumbnails.map((res) => res.status)).toEqual(Array(150).fill(200));
    // A tenant's server behind one egress address.
    const keyed = await Promise.all(Array.from({ length: 150 }, () => gw.fetch(`/i/insecure${image}`, { headers: { 'x-api-key': tenant.key } })));
    expect(keyed.map((res) => res.status)).toEqual(Array(150).fill(200));
    expect(keyed[0].headers.get('ratelimit-policy')).toBe('"tenant";q=1000;w=60, "tenant-hour";q=10000;w=3600');
    // The pre-authentication path from the same address still has its own bucket: the first
    // requests of each key were key-cache misses (at most two tokens), the rest are left.
    const statuses: number[] = [];
    for (let i = 0; i < 101; i++) statuses.push((await gw.fetch(`/i/insecure${image}`)).status);
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(98);
    expect(statuses.at(-1)).toBe(429);
  });
});

describe('an optional per-IP cap on authenticated requests', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createProbedApp({ config: { rateLimit: { ipAuthenticated: { perMinute: 5 } } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('refuses the address over its cap with scope ip, whichever tenant it sends', async () => {
    const first = await createTenant(gw);
    const second = await createTenant(gw);
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await probe(gw, i % 2 ? second : first)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const refused = await probe(gw, first);
    expect((await refused.json()).error).toMatchObject({ code: 'rate_limited', scope: 'ip' });
    expect(refused.headers.get('ratelimit-policy')).toContain('"ip";q=5;w=60');
  });
});

describe('every authenticated route is rate limited', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createProbedApp({ config: roomyIp });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('limits GET /api/v1/me by the tenant buckets', async () => {
    const tenant = await createTenant(gw, { rateLimits: { perMinute: 3 } });
    const me = () => gw.fetch('/api/v1/me', { headers: { 'x-api-key': tenant.key } });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await me()).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const refused = await me();
    expect((await refused.json()).error).toMatchObject({ code: 'rate_limited', scope: 'tenant' });
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    // The same buckets as its image requests: they are spent too.
    expect((await probe(gw, tenant)).status).toBe(429);
  });

  it('limits the tenant image list of the uploads API', async () => {
    const tenant = await createTenant(gw, { rateLimits: { perMinute: 1 } });
    const list = () => gw.fetch('/api/v1/images', { headers: { 'x-api-key': tenant.key } });
    expect((await list()).status).not.toBe(429);
    expect((await list()).status).toBe(429);
  });
});

describe('route capacity', () => {
  it('warns at start when a plan alone could fill a route', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const gw = await createProbedApp({ config: { rateLimit: { routes: { proxy: { perMinute: 4000 } } } } });
    try {
      const lines = warn.mock.calls.map(([message]) => String(message));
      // The largest plan (pro, 5000/min) could fill the proxy capacity on its own; uploads (20000) are fine.
      expect(lines.filter((line) => /route proxy: capacity 4000\/min is below plan pro \(5000\/min\)/.test(line))).toHaveLength(1);
      expect(lines.some((line) => /route upload: capacity/.test(line))).toBe(false);
      // Compiling the route for its first request does not warn again.
      await probe(gw, await createTenant(gw));
      expect(warn.mock.calls.filter(([message]) => /route proxy: capacity/.test(String(message)))).toHaveLength(1);
    } finally {
      warn.mockRestore();
      await gw.close();
    }
  });
});

describe('all or nothing', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createProbedApp({ config: { ...roomyIp, rateLimit: { ...roomyIp.rateLimit, routes: { proxy: { perMinute: 4 } } } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('takes no capacity token for a request the tenant bucket refuses', async () => {
    const first = await createTenant(gw, { rateLimits: { perMinute: 2 } });
    const second = await createTenant(gw, { rateLimits: { perMinute: 100 } });
    expect((await probe(gw, first)).status).toBe(200);
    expect((await probe(gw, first)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const refused = await probe(gw, first);
      expect(refused.status).toBe(429);
      expect((await refused.json()).error.scope).toBe('tenant');
    }
    // The route (4/min) spent 2 tokens, not 5: another tenant gets the other 2.
    expect((await probe(gw, second)).status).toBe(200);
    expect((await probe(gw, second)).status).toBe(200);
    // Then the route is at capacity: the service's state, not the caller's fault.
    const full = await probe(gw, second);
    expect(full.status).toBe(503);
    expect((await full.json()).error).toMatchObject({ code: 'unavailable', retryAfter: expect.any(Number) });
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('Redis round trips', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createProbedApp({ config: { ...roomyIp, usage: { flushIntervalSeconds: 3600 } } });
    // The batch goes out when the test asks (settled()), so what it counts is deterministic.
    gw.app.get(SchedulerRegistry).deleteInterval('usage-batch');
  });
  afterAll(async () => {
    await gw.close();
  });

  /** The commands in RESP socket writes, as "name [script sha]". */
  function commandsIn(writes: readonly string[]): string[] {
    const commands: string[] = [];
    for (const write of writes) {
      for (const match of write.matchAll(/\*\d+\r\n\$\d+\r\n([a-z]+)\r\n(?:\$40\r\n([0-9a-f]{40})\r\n)?/gi)) {
        commands.push(match[2] ? `${match[1].toLowerCase()} ${match[2]}` : match[1].toLowerCase());
      }
    }
    return commands;
  }

  /** Socket writes of the command connection naming the tenant (every key of its requests does). */
  function recordWrites(tenant: Tenant): { writes: string[]; stop: () => void } {
    const stream = (gw.app.get(RedisService).client as unknown as { stream: { write: (chunk: unknown, ...rest: unknown[]) => boolean } }).stream;
    const write = stream.write;
    const writes: string[] = [];
    stream.write = function (chunk: unknown, ...rest: unknown[]) {
      const text = String(chunk);
      if (text.includes(tenant.id)) writes.push(text);
      return write.call(this, chunk, ...rest);
    };
    return { writes, stop: () => (stream.write = write) };
  }

  it('costs a cached-key request one round trip, its bytes going out with the next batch', async () => {
    const tenant = await createTenant(gw);
    const usage = gw.app.get(UsageService);
    // Warm up: caches the key and seeds the month view.
    expect((await probe(gw, tenant)).status).toBe(200);
    await usage.settled();
    const recorder = recordWrites(tenant);
    try {
      const res = await probe(gw, tenant, '?out=123');
      expect(res.status).toBe(200);
      // Before the response: one EVALSHA (every bucket, the quota check, the count), nothing else.
      expect(recorder.writes).toHaveLength(1);
      expect(commandsIn(recorder.writes)).toEqual([`evalsha ${ADMIT_SCRIPT.sha1}`]);
      await usage.settled();
      expect(commandsIn(recorder.writes)).toEqual([`evalsha ${ADMIT_SCRIPT.sha1}`, `evalsha ${USAGE_SETTLE.sha1}`]);
    } finally {
      recorder.stop();
    }
    const report = await (await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } })).json();
    expect(report.bandwidthBytes.used).toBe(123);
  });

  it('sends the bytes of many requests in one batch call', async () => {
    const tenant = await createTenant(gw);
    const usage = gw.app.get(UsageService);
    expect((await probe(gw, tenant)).status).toBe(200);
    await usage.settled();
    const recorder = recordWrites(tenant);
    try {
      const responses = await Promise.all(Array.from({ length: 10 }, () => probe(gw, tenant, '?out=10')));
      expect(responses.map((res) => res.status)).toEqual(Array(10).fill(200));
      await usage.settled();
      // Ten admissions (automatic pipelining may share socket writes between them), one batch.
      const commands = commandsIn(recorder.writes);
      expect(commands.filter((c) => c === `evalsha ${ADMIT_SCRIPT.sha1}`)).toHaveLength(10);
      expect(commands.filter((c) => c !== `evalsha ${ADMIT_SCRIPT.sha1}`)).toEqual([`evalsha ${USAGE_SETTLE.sha1}`]);
    } finally {
      recorder.stop();
    }
    const report = await (await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } })).json();
    expect(report.bandwidthBytes.used).toBe(100);
    expect(report.requests.used).toBe(11);
  });
});

describe('store failure policies', () => {
  let redis: OwnRedis;

  beforeAll(async () => {
    redis = await OwnRedis.start();
  });
  afterAll(async () => {
    await redis.down();
  });

  it('local: keeps serving with in-process buckets while Redis is down, then returns to Redis', async () => {
    await redis.up();
    const gw = await createProbedApp({ config: { ...roomyIp, redis: { url: redis.url } } });
    const usage = gw.app.get(UsageService);
    try {
      const tenant = await createTenant(gw, { rateLimits: { perMinute: 1000 } });
      expect((await probe(gw, tenant)).status).toBe(200);
      await usage.settled();
      await usage.flush();

      await redis.down();
      for (let i = 0; i < 5; i++) {
        const res = await probe(gw, tenant);
        expect(res.status).toBe(200);
        // Decided by the in-process twin: the same limits and headers.
        expect(res.headers.get('x-ratelimit-limit')).toBe('1000');
      }
      const usageWhileDown = await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } });
      expect(usageWhileDown.status).toBe(200);
      const metrics = await (await gw.fetch('/metrics')).text();
      expect(metrics).toMatch(/gateway_store_errors_total\{store="redis"\} [1-9]/);

      await redis.up();
      const client = gw.app.get(RedisService).client!;
      await eventually(async () => client.status === 'ready');
      expect((await probe(gw, tenant)).status).toBe(200);
      // Back on Redis: the tenant's bucket exists there again (the restarted server started empty).
      expect(await client.hexists(`${gw.redisPrefix}a:{t:${tenant.id}}`, 'b:60')).toBe(1);
      await usage.settled();
      await usage.flush();
      // 1 before, 5 during the outage (flushed straight to PostgreSQL), 1 after: nothing lost or doubled.
      const report = await (await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } })).json();
      expect(report.requests.used).toBe(7);
    } finally {
      await gw.close();
    }
  });

  it('allow: lets requests through unchecked while Redis is down', async () => {
    await redis.up();
    const gw = await createProbedApp({ config: { ...roomyIp, redis: { url: redis.url }, rateLimit: { onStoreFailure: 'allow' } } });
    try {
      const tenant = await createTenant(gw, { rateLimits: { perMinute: 1 } });
      expect((await probe(gw, tenant)).status).toBe(200);
      await redis.down();
      const res = await probe(gw, tenant);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBeNull();
    } finally {
      await gw.close();
    }
  });

  it('deny: answers 503 unavailable while Redis is down, and recovers by itself', async () => {
    await redis.up();
    const gw = await createProbedApp({ config: { ...roomyIp, redis: { url: redis.url }, rateLimit: { onStoreFailure: 'deny' } } });
    try {
      const tenant = await createTenant(gw);
      expect((await probe(gw, tenant)).status).toBe(200);
      await redis.down();
      const res = await probe(gw, tenant);
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe('unavailable');
      await redis.up();
      await eventually(async () => (await probe(gw, tenant)).status === 200);
    } finally {
      await gw.close();
    }
  });
});
