/**
 * Accounting guarantees of the admission store (docs/rate-limits-and-quotas.md) on the real gateway,
 * PostgreSQL and Redis: request quotas exact across two instances under a concurrent burst, refunds
 * of the 5xx the gateway writes itself, bytes batched yet never lost on a graceful shutdown and at
 * most one batch lost on a crash (a spawned gateway killed with SIGKILL), and nothing lost while
 * Redis is stopped and restarted under load.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import { Client } from 'pg';
import { RedisService } from '../src/redis/redis.service';
import { UsageService } from '../src/usage/usage.service';
import { usagePeriodOf } from '../src/usage/usage-period';
import { OwnRedis, type Tenant, createProbedApp, createTenant } from './quota-probe';
import { type GatewayProcess, freePort, spawnGateway, waitUntilReady } from './support/gateway-process';
import { type TestBackend, startBackend, waitFor } from './support/http-backends';
import { HIGH_RATE_LIMIT_CONFIG, HIGH_RATE_LIMIT_ENV, UNLIMITED, adminClient, createTenantWithKey } from './support/tenants';
import { type TestApp, createTestApp, createTestDatabase } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl, redisRunPrefix } from './support/test-env';

const roomy = { rateLimit: { ip: { perMinute: 1_000_000 } } };
const probe = (gw: TestApp, tenant: Tenant, query = '') => gw.fetch(`/probe${query}`, { headers: { 'x-api-key': tenant.key } });
const IMAGE = '/i/insecure/rs:fit:100:100/plain/local:///cat.png';

async function pgUsage(database: string, tenantId: string): Promise<{ requests: number; bytesOut: number; renders: number }> {
  const db = new Client({ connectionString: databaseUrl(database) });
  await db.connect();
  try {
    const { rows } = await db.query(
      `SELECT COALESCE(sum(requests), 0)::int AS requests, COALESCE(sum(bytes_out), 0)::int AS "bytesOut", COALESCE(sum(renders), 0)::int AS renders
       FROM usage_counters WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0];
  } finally {
    await db.end();
  }
}

const usedOf = async (gw: TestApp, key: string) => {
  const res = await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': key } });
  expect(res.status).toBe(200);
  return res.json();
};

describe('request quotas across two instances', () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await createProbedApp({ config: roomy });
    b = await createProbedApp({ config: roomy, database: a.database, redisPrefix: a.redisPrefix });
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  it('admits exactly 100 of 300 concurrent requests of a 100-request quota, and counts exactly 100', async () => {
    const tenant = await createTenant(a, { rateLimits: { perMinute: 100_000, perHour: 1_000_000 }, quotas: { monthlyRequests: 100 } });
    // The month view exists before the burst (its first use would seed it from PostgreSQL).
    expect((await usedOf(a, tenant.key)).requests.used).toBe(0);
    const responses = await Promise.all(Array.from({ length: 300 }, (_, i) => probe(i % 2 ? b : a, tenant)));
    const statuses = responses.map((res) => res.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect(statuses.filter((s) => s === 429)).toHaveLength(200);
    const refused = responses.find((res) => res.status === 429)!;
    expect((await refused.json()).error).toMatchObject({ code: 'quota_exceeded', quota: 'monthlyRequests' });
    expect(refused.headers.get('x-quota-remaining')).toBe('0');
    expect((await usedOf(b, tenant.key)).requests).toEqual({ limit: 100, used: 100, remaining: 0 });
    await Promise.all([a.app.get(UsageService).flush(), b.app.get(UsageService).flush()]);
    expect((await pgUsage(a.database, tenant.id)).requests).toBe(100);
  });
});

describe('refunds of the 5xx the gateway writes itself', () => {
  let backend: TestBackend;
  let gw: TestApp;

  beforeAll(async () => {
    backend = await startBackend({
      name: 'pool',
      handler: (req, res) => {
        if (req.url?.includes('slow')) return; // never answers: the gateway times out
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
        res.end('png-bytes');
      },
    });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        backends: [{ name: 'pool', url: backend.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
        // One attempt, a short wait for headers, and a breaker that does not open during the test.
        proxy: { retries: 0, headersTimeoutMs: 300, circuitBreaker: { failureThreshold: 1000 } },
      },
    });
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  it('takes back the count of a 504 and a 502, so a tenant pays only for what it got', async () => {
    const tenant = await createTenantWithKey(gw, { scopes: ['images:read', 'usage:read'], ...UNLIMITED, quotas: { ...UNLIMITED.quotas, monthlyRequests: 2 } });
    const usage = gw.app.get(UsageService);
    const fetchImage = (path = IMAGE) => gw.fetch(path, { headers: { 'x-api-key': tenant.key } });

    const timedOut = await fetchImage('/i/insecure/rs:fit:100:100/plain/local:///slow.png');
    expect(timedOut.status).toBe(504);
    expect((await timedOut.json()).error.code).toBe('gateway_timeout');
    await usage.settled();
    expect((await usedOf(gw, tenant.key)).requests.used).toBe(0);

    await backend.stop();
    for (let i = 0; i < 3; i++) {
      const failed = await fetchImage();
      expect(failed.status).toBe(502);
      expect((await failed.json()).error.code).toBe('bad_gateway');
      await usage.settled();
    }
    // Four failures against a quota of two, none of them counted.
    expect((await usedOf(gw, tenant.key)).requests.used).toBe(0);

    await backend.start();
    expect((await fetchImage()).status).toBe(200);
    // Another image: the same one again would be a cache hit, not a render.
    expect((await fetchImage(IMAGE.replace('.png', '-2.png'))).status).toBe(200);
    await usage.settled();
    const over = await fetchImage();
    expect(over.status).toBe(429);
    expect((await over.json()).error.quota).toBe('monthlyRequests');
    await usage.flush();
    // PostgreSQL has the two served requests, both rendered by the backend.
    expect(await pgUsage(gw.database, tenant.tenantId)).toEqual({ requests: 2, bytesOut: 18, renders: 2 });
  });

  it('takes back the count of a 503 no_healthy_backend', async () => {
    // A deployment of its own: no backend at all.
    const empty = await createTestApp({ config: { ...HIGH_RATE_LIMIT_CONFIG, healthCheck: { intervalSeconds: 3600 } } });
    try {
      const tenant = await createTenantWithKey(empty, { scopes: ['images:read', 'usage:read'], ...UNLIMITED });
      const res = await empty.fetch(IMAGE, { headers: { 'x-api-key': tenant.key } });
      expect(res.status).toBe(503);
      expect((await res.json()).error.code).toBe('no_healthy_backend');
      // Counted at admission (the quota headers say so), refunded once the answer was written.
      expect(res.headers.get('x-quota-remaining')).toBe(String(UNLIMITED.quotas!.monthlyRequests! - 1));
      await empty.app.get(UsageService).settled();
      expect((await usedOf(empty, tenant.key)).requests.used).toBe(0);
    } finally {
      await empty.close();
    }
  });
});

describe('bytes in batches', () => {
  it('loses nothing on a graceful shutdown: the last batch and the journal are written first', async () => {
    let gw = await createProbedApp({ config: roomy });
    const tenant = await createTenant(gw);
    const responses = await Promise.all(Array.from({ length: 20 }, () => probe(gw, tenant, '?in=3&out=100')));
    expect(responses.every((res) => res.status === 200)).toBe(true);
    // No wait for the batch: the shutdown sends it.
    await gw.close();
    expect(await pgUsage(gw.database, tenant.id)).toMatchObject({ requests: 20, bytesOut: 2000 });
    gw = await createProbedApp({ config: roomy, database: gw.database, redisPrefix: gw.redisPrefix });
    try {
      const view = await usedOf(gw, tenant.key);
      expect(view.requests.used).toBe(20);
      expect(view.bandwidthBytes.used).toBe(2060);
    } finally {
      await gw.close();
    }
  });

  describe('on a crash', () => {
    let backend: TestBackend;
    let gw: GatewayProcess;
    let database: string;
    const prefix = `${redisRunPrefix()}crash:`;
    const ADMIN_TOKEN = 'crash-admin-token-0123456789';

    beforeAll(async () => {
      backend = await startBackend({
        name: 'pool',
        handler: (_req, res) => {
          res.writeHead(200, { 'content-type': 'image/png', 'content-length': '9' });
          res.end('png-bytes');
        },
      });
      database = await createTestDatabase();
      const dir = mkdtempSync(join(tmpdir(), 'igw-crash-'));
      const configFile = join(dir, 'gateway.yaml');
      writeFileSync(configFile, 'usage:\n  flushIntervalSeconds: 1\n');
      gw = spawnGateway({
        NODE_ENV: 'test',
        CONFIG_FILE: configFile,
        ADMIN_TOKEN,
        KEY_PEPPER: 'crash-pepper-0123456789',
        SECRETS_KEY: 'ef'.repeat(32),
        DATA_DIR: dir,
        PORT: String(await freePort()),
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl(database),
        REDIS_URL: TEST_REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        BACKENDS: `pool=${backend.url}|1`,
        HEALTH_CHECK_INTERVAL: '3600',
        LOG_LEVEL: 'warn',
        ...HIGH_RATE_LIMIT_ENV,
      });
      await waitUntilReady(gw);
    }, 60_000);
    afterAll(async () => {
      if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
      await backend.stop();
    });

    it('loses at most the last batch of bytes from the shared view and one flush interval from PostgreSQL', async () => {
      const tenant = await createTenantWithKey(adminClient(gw.url, ADMIN_TOKEN), { scopes: ['images:read'], ...UNLIMITED });
      const fetchImage = async () => {
        const res = await fetch(gw.url + IMAGE, { headers: { 'x-api-key': tenant.key } });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      };
      for (let i = 0; i < 10; i++) await fetchImage();
      // Longer than a batch interval (250 ms) and a flush interval (1 s): those ten are written.
      await sleep(1_600);
      await Promise.all(Array.from({ length: 5 }, fetchImage));
      gw.child.kill('SIGKILL');
      await gw.exited;

      const redis = new Redis(TEST_REDIS_URL);
      try {
        const month = usagePeriodOf(new Date()).month;
        const [requests, bytes] = await redis.hmget(`${prefix}a:{t:${tenant.tenantId}}`, `r:${month}`, `by:${month}`);
        // Requests are counted at admission, in the same call as the rate limits: all fifteen.
        expect(Number(requests)).toBe(15);
        // Bytes reach the view in batches: the ten early ones surely, the last five maybe.
        expect(Number(bytes)).toBeGreaterThanOrEqual(90);
        expect(Number(bytes)).toBeLessThanOrEqual(135);
      } finally {
        redis.disconnect();
      }
      const written = await pgUsage(database, tenant.tenantId);
      expect(written.requests).toBeGreaterThanOrEqual(10);
      expect(written.requests).toBeLessThanOrEqual(15);
      expect(written.bytesOut).toBe(written.requests * 9);
    });
  });
});

describe('Redis stopped and restarted under load', () => {
  let redis: OwnRedis;

  beforeAll(async () => {
    redis = await OwnRedis.start();
  });
  afterAll(async () => {
    await redis.down();
  });

  it('counts every request served during the outage: usage equals requests served', async () => {
    const gw = await createProbedApp({ config: { ...roomy, redis: { url: redis.url }, usage: { flushIntervalSeconds: 1 } } });
    const usage = gw.app.get(UsageService);
    try {
      const tenant = await createTenant(gw, { rateLimits: { perMinute: 1_000_000, perHour: 10_000_000 } });
      let served = 0;
      let stop = false;
      const servedAt: number[] = [];
      const client = async () => {
        while (!stop) {
          const res = await probe(gw, tenant, '?out=10');
          if (res.status === 200) served++;
          else throw new Error(`a request failed with ${res.status} while Redis was ${gw.app.get(RedisService).client?.status}`);
          await sleep(10);
        }
      };
      const clients = [client(), client(), client()];
      await sleep(2_000);
      servedAt.push(served);
      // SIGKILL: the server loses everything it held (no persistence), like a crash without AOF.
      await redis.down();
      await sleep(3_000);
      servedAt.push(served);
      await redis.up();
      await waitFor('the gateway to reconnect', () => gw.app.get(RedisService).ready, 10_000);
      await sleep(2_000);
      stop = true;
      await Promise.all(clients);
      // Not vacuous: requests were served before, during and after the outage.
      expect(servedAt[0]).toBeGreaterThan(20);
      expect(served - servedAt[0]).toBeGreaterThan(40);
      await usage.settled();
      await usage.flush();
      await usage.flush();
      expect(await pgUsage(gw.database, tenant.id)).toMatchObject({ requests: served, bytesOut: served * 10 });
      // The view Redis lost was rebuilt from PostgreSQL (plus what arrived since): the same figures.
      const view = await usedOf(gw, tenant.key);
      expect(view.requests.used).toBe(served);
      expect(view.bandwidthBytes.used).toBe(served * 10);
    } finally {
      await gw.close();
    }
  }, 60_000);
});
