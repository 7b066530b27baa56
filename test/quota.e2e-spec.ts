/**
 * Quotas and usage end to end (docs/rate-limits-and-quotas.md) on the real gateway, PostgreSQL and Redis: exact request
 * quotas across two instances, bandwidth and daily quotas, durability across a graceful stop and
 * a Redis wipe, exactly-once flushing, the usage APIs and the admin reset.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { EffectiveLimits } from '../src/common/http/request-context';
import { QuotaService } from '../src/quotas/quota.service';
import { UsageRepository } from '../src/usage/usage.repository';
import { UsageService } from '../src/usage/usage.service';
import { usagePeriodOf } from '../src/usage/usage-period';
import { type Tenant, createProbedApp, createTenant, wipeRedisPrefix } from './quota-probe';
import { type TestApp, createTestApp } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl } from './support/test-env';

const roomy = { rateLimit: { ip: { perMinute: 1_000_000 } } };
const probe = (gw: TestApp, tenant: Tenant, query = '') => gw.fetch(`/probe${query}`, { headers: { 'x-api-key': tenant.key } });
const usageOf = async (gw: TestApp, tenant: Tenant) => {
  const res = await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } });
  expect(res.status).toBe(200);
  return res.json();
};

/** A request, then the wait for its count to be acknowledged by the instance that served it. */
async function counted(gw: TestApp, tenant: Tenant, query = ''): Promise<Response> {
  const res = await probe(gw, tenant, query);
  await gw.app.get(UsageService).settled();
  return res;
}

describe('quotas across two instances', () => {
  let a: TestApp;
  let b: TestApp;
  let db: Client;

  beforeAll(async () => {
    a = await createProbedApp({ config: roomy });
    b = await createProbedApp({ config: roomy, database: a.database, redisPrefix: a.redisPrefix });
    db = new Client({ connectionString: databaseUrl(a.database) });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await b.close().catch(() => undefined);
    await a.close().catch(() => undefined);
  });

  it('admits exactly 25 requests of a 25-request quota, survives a graceful stop and a Redis wipe, and resets', async () => {
    const tenant = await createTenant(a, { quotas: { monthlyRequests: 25 } });
    const monthEnd = usagePeriodOf(new Date()).monthEnd.getTime();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await counted(i % 2 ? b : a, tenant);
      statuses.push(res.status);
      expect(res.headers.get('x-quota-limit')).toBe('25');
      expect(res.headers.get('x-quota-remaining')).toBe(String(Math.max(0, 24 - i)));
      const reset = Number(res.headers.get('x-quota-reset'));
      expect(Math.abs(reset - (monthEnd - Date.now()) / 1000)).toBeLessThan(5);
      if (res.status === 429) {
        expect((await res.json()).error).toMatchObject({ code: 'quota_exceeded', quota: 'monthlyRequests' });
      }
    }
    expect(statuses).toEqual([...Array(25).fill(200), ...Array(5).fill(429)]);
    expect((await usageOf(a, tenant)).requests).toEqual({ limit: 25, used: 25, remaining: 0 });

    // Graceful stop: both instances flush. Then Redis loses this deployment's data.
    await a.close();
    await b.close();
    const [{ sum }] = (await db.query(`SELECT sum(requests)::int AS sum FROM usage_counters WHERE tenant_id = $1`, [tenant.id])).rows;
    expect(sum).toBe(25);
    expect(await wipeRedisPrefix(TEST_REDIS_URL, a.redisPrefix)).toBeGreaterThan(0);

    a = await createProbedApp({ config: roomy, database: a.database, redisPrefix: a.redisPrefix });
    b = await createProbedApp({ config: roomy, database: a.database, redisPrefix: a.redisPrefix });
    // Rebuilt from PostgreSQL before use, on either instance, without double counting.
    expect((await usageOf(b, tenant)).requests).toEqual({ limit: 25, used: 25, remaining: 0 });
    expect((await probe(a, tenant)).status).toBe(429);
    expect((await usageOf(a, tenant)).requests.used).toBe(25);

    const report = await (await a.admin(`/admin/v1/tenants/${tenant.id}/usage`)).json();
    expect(report.totals).toEqual({ requests: 25, bytesIn: 0, bytesOut: 0 });
    // The current period in the shape of README.md, as the tenant sees it at /api/v1/usage.
    expect(report.requests).toEqual({ limit: 25, used: 25, remaining: 0 });
    expect(report.period).toEqual((await usageOf(a, tenant)).period);
    expect(report.bandwidthBytes).toMatchObject({ used: 0 });
    expect(report.storageBytes).toMatchObject({ used: 0 });
    expect(report.days).toEqual([{ day: usagePeriodOf(new Date()).day, requests: 25, bytesIn: 0, bytesOut: 0, renders: 0, storageBytes: 0 }]);

    const reset = await a.admin(`/admin/v1/tenants/${tenant.id}/usage/reset`, { method: 'POST' });
    expect(reset.status).toBe(200);
    expect((await reset.json()).before).toEqual({ requests: 25, bytesIn: 0, bytesOut: 0 });
    const audit = await (await a.admin(`/admin/v1/audit-log?targetId=${tenant.id}&targetType=tenant`)).json();
    expect(audit.items.map((entry: { action: string }) => entry.action)).toContain('usage.reset');
    expect((await counted(b, tenant)).status).toBe(200);
    expect((await usageOf(a, tenant)).requests).toEqual({ limit: 25, used: 1, remaining: 24 });
  });

  it('counts request and response bytes against the bandwidth quota', async () => {
    const tenant = await createTenant(a, { quotas: { monthlyBandwidthBytes: 1000 } });
    expect((await counted(a, tenant, '?in=100&out=500')).status).toBe(200);
    expect((await counted(b, tenant, '?in=0&out=399')).status).toBe(200);
    expect((await counted(a, tenant, '?in=1&out=0')).status).toBe(200);
    const refused = await counted(b, tenant);
    expect(refused.status).toBe(429);
    expect((await refused.json()).error).toMatchObject({ code: 'quota_exceeded', quota: 'monthlyBandwidthBytes' });
    const usage = await usageOf(a, tenant);
    expect(usage.bandwidthBytes).toEqual({ limit: 1000, used: 1000, remaining: 0 });
    expect(usage.requests.used).toBe(3);
  });

  it('applies an optional daily quota and reports it', async () => {
    const tenant = await createTenant(a, { quotas: { dailyRequests: 3 } });
    const before = await usageOf(a, tenant);
    expect(before.dailyRequests).toMatchObject({ limit: 3, used: 0, remaining: 3 });
    for (let i = 0; i < 3; i++) expect((await counted(i % 2 ? a : b, tenant)).status).toBe(200);
    const refused = await counted(a, tenant);
    expect(refused.status).toBe(429);
    expect((await refused.json()).error.quota).toBe('dailyRequests');
    const after = await usageOf(b, tenant);
    expect(after.dailyRequests).toEqual({ limit: 3, used: 3, remaining: 0, resetsAt: usagePeriodOf(new Date()).dayEnd.toISOString() });
    expect(after.period).toEqual({ start: usagePeriodOf(new Date()).monthStart.toISOString(), end: usagePeriodOf(new Date()).monthEnd.toISOString() });
    expect(after.storageBytes).toMatchObject({ used: 0 });
  });

  it('writes a batch exactly once when it is retried after a commit whose answer was lost', async () => {
    const tenant = await createTenant(a);
    for (let i = 0; i < 4; i++) expect((await counted(a, tenant)).status).toBe(200);
    await a.app.get(UsageService).flushTenant(tenant.id);
    const sumOf = async () =>
      (await db.query(`SELECT COALESCE(sum(requests), 0)::int AS n FROM usage_counters WHERE tenant_id = $1`, [tenant.id])).rows[0].n;
    expect(await sumOf()).toBe(4);
    const repository = a.app.get(UsageRepository);
    const batch = { batchId: randomUUID(), tenantId: tenant.id, rows: [{ day: usagePeriodOf(new Date()).day, requests: 3, bytesIn: 0, bytesOut: 0, renders: 0 }] };
    const first = await repository.applyBatches([batch]);
    expect(await sumOf()).toBe(7);
    // The retry finds its id: nothing is added, and it learns the version it committed under.
    const retry = await repository.applyBatches([batch]);
    expect(await sumOf()).toBe(7);
    expect(retry.get(batch.batchId)).toBe(first.get(batch.batchId));
    // Each new batch of the tenant takes the next version.
    const next = await repository.applyBatches([{ ...batch, batchId: randomUUID() }]);
    expect([...next.values()][0]).toBe(first.get(batch.batchId)! + 1);
  });

  it('measures storage from the stored images and holds reservations of uploads in progress', async () => {
    const tenant = await createTenant(a, { quotas: { storageBytes: 1000 } });
    await db.query(
      `INSERT INTO images (tenant_id, file_name, content_type, size_bytes, sha256) VALUES ($1, 'a.png', 'image/png', 700, $2)`,
      [tenant.id, 'a'.repeat(64)],
    );
    expect((await usageOf(a, tenant)).storageBytes).toEqual({ limit: 1000, used: 700, remaining: 300 });
    const quotas = a.app.get(QuotaService);
    const caller = { tenantId: tenant.id, limits: { storageBytes: 1000 } as EffectiveLimits };
    const first = await quotas.reserveStorage(caller, 200);
    await expect(quotas.reserveStorage(caller, 200)).rejects.toMatchObject({ code: 'quota_exceeded', extras: { quota: 'storageBytes' } });
    first.release();
    first.release();
    await expect(quotas.checkStorage(caller, 300)).resolves.toBeUndefined();
    await expect(quotas.checkStorage(caller, 301)).rejects.toMatchObject({ code: 'quota_exceeded' });
  });

  it('documents the usage APIs in Swagger', async () => {
    // The gateway exactly as main.ts builds it (the probe harness has no Swagger).
    const gw = await createTestApp({ database: a.database, redisPrefix: a.redisPrefix });
    try {
      const doc = await (await gw.fetch('/docs-json')).json();
      expect(doc.paths['/api/v1/usage'].get).toBeDefined();
      expect(doc.paths['/admin/v1/tenants/{id}/usage'].get).toBeDefined();
      expect(doc.paths['/admin/v1/tenants/{id}/usage/reset'].post).toBeDefined();
      expect(doc.components.schemas.TenantUsageResponseDto.properties).toHaveProperty('dailyRequests');
    } finally {
      await gw.close();
    }
  });

  it('answers 404 for an unknown tenant and 400 for a bad range', async () => {
    expect((await a.admin('/admin/v1/tenants/00000000-0000-4000-8000-000000000000/usage')).status).toBe(404);
    const tenant = await createTenant(a);
    const bad = await a.admin(`/admin/v1/tenants/${tenant.id}/usage?from=2026-13-01`);
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe('validation_failed');
    expect((await a.admin(`/admin/v1/tenants/${tenant.id}/usage?from=2026-02-01&to=2026-01-01`)).status).toBe(400);
  });
});

describe('single-instance mode (no Redis)', () => {
  it('enforces the quota in process and keeps the count across a graceful restart', async () => {
    let gw = await createProbedApp({ config: roomy, withoutRedis: true });
    try {
      const tenant = await createTenant(gw, { quotas: { monthlyRequests: 3 } });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await probe(gw, tenant)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      await gw.close();
      gw = await createProbedApp({ config: roomy, withoutRedis: true, database: gw.database });
      expect((await usageOf(gw, tenant)).requests).toEqual({ limit: 3, used: 3, remaining: 0 });
      expect((await probe(gw, tenant)).status).toBe(429);
    } finally {
      await gw.close();
    }
  });
});
