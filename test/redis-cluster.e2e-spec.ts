import { randomBytes, randomUUID } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { Client } from 'pg';
import { RedisService } from '../src/redis/redis.service';
import { UsageViewStore } from '../src/usage/usage-view.store';
import { usagePeriodOf } from '../src/usage/usage-period';
import { UsageService } from '../src/usage/usage.service';
import { type TestBackend, startBackend } from './support/http-backends';
import { OwnRedisCluster } from './support/redis-topologies';
import { type TenantWithKey, type TenantWithKeyOptions, UNLIMITED, createTenantWithKey } from './support/tenants';
import { type TestApp, createTestApp } from './support/test-app';
import { databaseUrl } from './support/test-env';

/**
 * The gateway on a real Redis Cluster (docs/rate-limits-and-quotas.md, docker/README.md): three masters started by the spec, two
 * gateway instances in `redis.mode: cluster` sharing one database, proxied requests on `/i/*`.
 * A request's buckets live in different slots (`{ip:…}`, `{t:<tenant>}`, `{r:proxy}`), so every
 * check here would fail with CROSSSLOT if any script or pipeline mixed them.
 */
const POOL_KEY = randomBytes(32).toString('hex');
const POOL_SALT = randomBytes(32).toString('hex');
const IMAGE = '/i/insecure/rs:fit:100:100/plain/local:///cat.png';

describe('on a Redis Cluster (3 masters, two gateway instances)', () => {
  let cluster: OwnRedisCluster;
  let backend: TestBackend;
  let a: TestApp;
  let b: TestApp;

  const gatewayConfig = (extra: Record<string, unknown> = {}) => ({
    // Roomy, yet slow enough to refill that the ip and route buckets of a burst are still in
    // Redis seconds later (a full bucket expires), where the spec counts keys per node.
    rateLimit: { ip: { perMinute: 1000 }, routes: { proxy: { perMinute: 1000 } } },
    redis: { mode: 'cluster', url: cluster.url },
    imgproxy: { key: POOL_KEY, salt: POOL_SALT },
    backends: [{ name: 'pool', url: backend.url, weight: 1 }],
    healthCheck: { intervalSeconds: 3600 },
    ...extra,
  });
  const tenantWith = (options: TenantWithKeyOptions) =>
    createTenantWithKey(a, { scopes: ['images:read', 'usage:read'], ...UNLIMITED, ...options });
  const image = (gw: TestApp, tenant: TenantWithKey) => gw.fetch(IMAGE, { headers: { 'x-api-key': tenant.key } });
  /** Failed Redis calls of an instance: a CROSSSLOT reply would count here (and fall back to local buckets). */
  const redisErrors = async (gw: TestApp): Promise<number> => {
    const text = await (await gw.fetch('/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith('gateway_store_errors_total{store="redis"}'));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const usedRequests = async (gw: TestApp, tenant: TenantWithKey): Promise<number> => {
    const res = await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(200);
    return (await res.json()).requests.used;
  };

  beforeAll(async () => {
    cluster = await OwnRedisCluster.start(3);
    backend = await startBackend({
      name: 'pool',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
        res.end('png-bytes');
      },
    });
    a = await createTestApp({ config: gatewayConfig() });
    b = await createTestApp({ database: a.database, redisPrefix: a.redisPrefix, config: gatewayConfig() });
  }, 60_000);

  afterAll(async () => {
    await b?.close().catch(() => undefined);
    await a?.close().catch(() => undefined);
    await backend?.stop();
    await cluster?.stop();
  }, 30_000);

  it('runs on a Cluster client', () => {
    expect(a.app.get(RedisService).client?.isCluster).toBe(true);
    expect(b.app.get(RedisService).ready).toBe(true);
  });

  it('admits exactly 30 of 50 simultaneous requests of a 30/min tenant across both instances, with keys on several nodes', async () => {
    const tenant = await tenantWith({ rateLimits: { perMinute: 30, perHour: 100_000 } });
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => image(i % 2 ? b : a, tenant)));
    const admitted = responses.filter((res) => res.status === 200);
    // One token refills every 2 s: a run slower than that may admit one more.
    expect(admitted.length).toBeGreaterThanOrEqual(30);
    expect(admitted.length).toBeLessThanOrEqual(31);
    const refused = responses.filter((res) => res.status === 429);
    expect(refused).toHaveLength(50 - admitted.length);
    expect((await refused[0].json()).error).toMatchObject({ code: 'rate_limited', scope: 'tenant', retryAfter: expect.any(Number) });
    expect(refused[0].headers.get('x-ratelimit-limit')).toBe('30');
    // The caller's own buckets (the IP bucket guards the pre-authentication path, the route's capacity is shared).
    expect(refused[0].headers.get('ratelimit-policy')).toBe('"tenant";q=30;w=60, "tenant-hour";q=100000;w=3600');
    for (const res of admitted) expect(await res.text()).toBe('png-bytes');
    expect(await redisErrors(a)).toBe(0);
    expect(await redisErrors(b)).toBe(0);

    // `{ip:127.0.0.1}` (slot 5384) and `{r:proxy}` (slot 9859) are on different masters of an
    // evenly split 3-master cluster, whatever slot the tenant's tag takes.
    const perNode = await cluster.keysPerNode(a.redisPrefix);
    expect(perNode.filter((count) => count > 0).length).toBeGreaterThan(1);
  });

  it('takes no IP or route token for a request the tenant bucket refuses (refunds across slots)', async () => {
    // Three slots per request: the per-IP cap of authenticated callers, the tenant, the route.
    const strict = await createTestApp({
      database: a.database,
      config: gatewayConfig({ rateLimit: { ip: { perMinute: 1000 }, ipAuthenticated: { perMinute: 4 }, routes: { proxy: { perMinute: 100_000 } } } }),
    });
    try {
      const first = await tenantWith({ rateLimits: { perMinute: 2, perHour: 100_000 } });
      const second = await tenantWith({ rateLimits: { perMinute: 100, perHour: 100_000 } });
      expect((await image(strict, first)).status).toBe(200);
      expect((await image(strict, first)).status).toBe(200);
      for (let i = 0; i < 3; i++) {
        const refused = await image(strict, first);
        expect(refused.status).toBe(429);
        expect((await refused.json()).error.scope).toBe('tenant');
      }
      // The IP (4/min) spent 2 tokens, not 5: another tenant from the same address gets the other 2.
      expect((await image(strict, second)).status).toBe(200);
      expect((await image(strict, second)).status).toBe(200);
      const third = await image(strict, second);
      expect(third.status).toBe(429);
      expect((await third.json()).error.scope).toBe('ip');
    } finally {
      await strict.close();
    }
  });

  it('holds a 25-request quota across instances, and the usage survives a graceful stop', async () => {
    const tenant = await tenantWith({ quotas: { ...UNLIMITED.quotas, monthlyRequests: 25 } });
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const gw = i % 2 ? b : a;
      const res = await image(gw, tenant);
      statuses.push(res.status);
      expect(res.headers.get('x-quota-remaining')).toBe(String(Math.max(0, 24 - i)));
      if (res.status === 429) expect((await res.json()).error).toMatchObject({ code: 'quota_exceeded', quota: 'monthlyRequests' });
      else await res.arrayBuffer();
      await gw.app.get(UsageService).settled();
    }
    expect(statuses).toEqual([...Array(25).fill(200), ...Array(5).fill(429)]);
    expect(await usedRequests(b, tenant)).toBe(25);

    // A graceful stop flushes what each instance counted to PostgreSQL.
    await a.close();
    await b.close();
    const db = new Client({ connectionString: databaseUrl(a.database) });
    await db.connect();
    try {
      const { rows } = await db.query(`SELECT COALESCE(sum(requests), 0)::int AS n FROM usage_counters WHERE tenant_id = $1`, [tenant.tenantId]);
      expect(rows[0].n).toBe(25);
    } finally {
      await db.end();
    }

    a = await createTestApp({ database: a.database, redisPrefix: a.redisPrefix, config: gatewayConfig() });
    b = await createTestApp({ database: a.database, redisPrefix: a.redisPrefix, config: gatewayConfig() });
    expect(await usedRequests(b, tenant)).toBe(25);
    const refused = await image(a, tenant);
    expect(refused.status).toBe(429);
    expect((await refused.json()).error.quota).toBe('monthlyRequests');
    expect(await redisErrors(a)).toBe(0);
  });

  it('refuses on B within 2 s a key revoked on A (pub/sub through the cluster)', async () => {
    const tenant = await tenantWith({});
    const cached = await image(b, tenant);
    expect(cached.status).toBe(200);
    await cached.arrayBuffer();
    const revoked = await a.admin(`/admin/v1/tenants/${tenant.tenantId}/keys/${tenant.keyId}`, { method: 'DELETE' });
    expect(revoked.status).toBe(204);
    const started = Date.now();
    let status = 200;
    while (status !== 401 && Date.now() - started < 2_000) {
      const res = await image(b, tenant);
      status = res.status;
      await res.arrayBuffer();
      if (status !== 401) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(status).toBe(401);
  });

  it('runs every usage script on the tenant slot, a batch of tenants on several nodes at once', async () => {
    const client = a.app.get(RedisService).client as Cluster;
    // A prefix of its own: these made-up tenants are no business of the instances.
    const prefix = `${a.redisPrefix}store:`;
    const store = new UsageViewStore(client, prefix);
    const period = usagePeriodOf(new Date());
    const tenants = Array.from({ length: 12 }, () => randomUUID());
    for (const tenant of tenants) {
      expect(await store.seed(tenant, period, { requests: 10, bytesIn: 0, bytesOut: 0, days: { [period.day]: 10 } }, 1)).toBe('seeded');
    }
    expect((await cluster.keysPerNode(prefix)).filter((count) => count > 0).length).toBeGreaterThan(1);
    // One batch touching every tenant: one script per tenant slot, sent at once.
    const replies = await store.settle(tenants.map((tenantId) => ({ tenantId, day: period.day, token: '', refunds: 0, newRequests: 2, bytesIn: 3, bytesOut: 4 })));
    expect(replies.map((reply) => [reply.requests, reply.bytes])).toEqual(tenants.map(() => [12, 7]));
    const [tenant] = tenants;
    const view = await store.read(tenant, period);
    expect(view).toMatchObject({ token: replies[0].token, requests: 12, dayRequests: 12, bytes: 7 });
    // A flush of version 2 counted under no view: the view (seeded at version 1) lacks it.
    await store.replay([{ tenantId: tenant, version: 2, entries: [{ day: period.day, tag: '', requests: 5, bytesIn: 0, bytesOut: 0, renders: 0 }] }]);
    expect(await store.read(tenant, period)).toMatchObject({ requests: 17 });
    // A seed that read PostgreSQL before that flush committed is refused.
    await store.reset(tenant, period);
    expect(await store.read(tenant, period)).toBeUndefined();
    expect(await store.seed(tenant, period, { requests: 0, bytesIn: 0, bytesOut: 0, days: {} }, 1)).toBe('stale');
    expect(await store.seed(tenant, period, { requests: 17, bytesIn: 0, bytesOut: 0, days: {} }, 2)).toBe('seeded');
  });

  // Last: it takes a master down.
  it('local policy: keeps serving at once while a master is down, then goes back to the cluster', async () => {
    const down = await cluster.ownerOf('{ip:127.0.0.1}');
    // The worst case: the tenant's slot (its buckets and usage) is on the dead master too.
    let tenant = await tenantWith({});
    for (let i = 0; i < 30 && (await cluster.ownerOf(`{t:${tenant.tenantId}}`)) !== down; i++) tenant = await tenantWith({});
    expect(await cluster.ownerOf(`{t:${tenant.tenantId}}`)).toBe(down);
    const errorsBefore = await redisErrors(a);
    await cluster.kill(down);
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const res = await image(a, tenant);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).not.toBeNull();
      await res.arrayBuffer();
      // Refused by the dead node's slots at once, not retried until redis.commandTimeoutMs (500 ms)
      // for each Redis call of the request (ip check, limiter, quota seed).
      expect(Date.now() - started).toBeLessThan(a.config.redis.commandTimeoutMs);
    }
    expect(await redisErrors(a)).toBeGreaterThan(errorsBefore);

    await cluster.restart(down);
    const deadline = Date.now() + 15_000;
    let back = false;
    while (!back && Date.now() < deadline) {
      const res = await image(a, tenant);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      // The restarted master is empty: the tenant's hash reappearing there means Redis decided again.
      back = (await cluster.keysPerNode(a.redisPrefix))[down] > 0;
      if (!back) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(back).toBe(true);
  }, 30_000);
});
