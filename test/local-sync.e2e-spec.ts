/**
 * `rateLimit.policy: local-sync` (docs/rate-limits-and-quotas.md): two gateway instances sharing
 * PostgreSQL and a Redis prefix decide in process and write back every 200 ms. Measures the drift
 * against the exact figure (a burst and a sustained overload) and checks its bound, the debt that
 * brings the long-run rate back, the counts reaching the usage view, and that a warm decision needs
 * no I/O. The measured figures are printed for the docs; the bounds are asserted.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionService } from '../src/rate-limit/admission.service';
import { UsageService } from '../src/usage/usage.service';
import { type Tenant, createProbedApp, createTenant } from './quota-probe';
import type { TestApp } from './support/test-app';

const INTERVAL_MS = 200;
const config = { rateLimit: { ip: { perMinute: 1_000_000 }, localSync: { intervalMs: INTERVAL_MS }, routes: { proxy: { perMinute: 1_000_000, policy: 'local-sync' } } } };
const probe = (gw: TestApp, tenant: Tenant) => gw.fetch('/probe', { headers: { 'x-api-key': tenant.key } });

describe('local-sync across two instances', () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await createProbedApp({ config });
    b = await createProbedApp({ config, database: a.database, redisPrefix: a.redisPrefix });
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  it('overshoots a burst by at most (instances - 1) bursts, then carries the debt', async () => {
    const burst = 60;
    const tenant = await createTenant(a, { rateLimits: { perMinute: burst, perHour: 100_000 } });
    // One request each: both instances now hold the shared levels (the first decision is exact).
    expect((await probe(a, tenant)).status).toBe(200);
    expect((await probe(b, tenant)).status).toBe(200);
    const responses = await Promise.all(Array.from({ length: 300 }, (_, i) => probe(i % 2 ? b : a, tenant)));
    const admitted = 2 + responses.filter((res) => res.status === 200).length;
    process.stdout.write(`local-sync burst: ${admitted} admitted for a burst of ${burst} on 2 instances\n`);
    expect(admitted).toBeGreaterThanOrEqual(burst);
    expect(admitted).toBeLessThanOrEqual(2 * burst);
    // After a write-back both know the shared level is below zero: one token a second comes back,
    // and each pays the debt first.
    await sleep(3 * INTERVAL_MS);
    expect((await probe(a, tenant)).status).toBe(429);
    expect((await probe(b, tenant)).status).toBe(429);
    // Every admitted request is counted: in the shared view (with the usage batch) and in PostgreSQL.
    await Promise.all([a.app.get(UsageService).settled(), b.app.get(UsageService).settled()]);
    expect((await a.app.get(UsageService).snapshot(tenant.id)).requests).toBe(admitted);
    await Promise.all([a.app.get(UsageService).flush(), b.app.get(UsageService).flush()]);
    const report = await (await a.admin(`/admin/v1/tenants/${tenant.id}/usage`)).json();
    expect(report.totals.requests).toBe(admitted);
  });

  it('stays within what the other instance admits in two intervals under a sustained overload', async () => {
    const perMinute = 1200;
    const tenant = await createTenant(a, { rateLimits: { perMinute, perHour: 100_000 } });
    const me = () => a.fetch('/api/v1/me', { headers: { 'x-api-key': tenant.key } });
    expect((await probe(a, tenant)).status).toBe(200);
    expect((await probe(b, tenant)).status).toBe(200);
    // Empty the shared bucket the exact way (GET /api/v1/me spends the same tenant buckets), in
    // batches until it refuses: on a loaded machine one batch may take longer than its refill.
    let refused = false;
    for (let batch = 0; batch < 20 && !refused; batch++) {
      const drained = await Promise.all(Array.from({ length: batch === 0 ? perMinute : 200 }, me));
      refused = drained.some((res) => res.status === 429);
    }
    expect(refused).toBe(true);
    const emptyAt = Date.now();
    // Both instances' levels are stale now: their next decisions read Redis again.
    await sleep(3 * INTERVAL_MS);
    let admitted = 0;
    const durationMs = 3_000;
    const client = async (gw: TestApp) => {
      while (Date.now() - emptyAt < durationMs) {
        if ((await probe(gw, tenant)).status === 200) admitted++;
        await sleep(2);
      }
    };
    await Promise.all([client(a), client(a), client(b), client(b)]);
    const elapsedMs = Date.now() - emptyAt;
    // What the exact policy would have admitted: one token every 50 ms from the moment it was empty.
    const exact = (perMinute / 60_000) * elapsedMs;
    const bound = (perMinute / 60_000) * 2 * INTERVAL_MS;
    process.stdout.write(`local-sync sustained: ${admitted} admitted where exact admits ${exact.toFixed(1)} (${elapsedMs} ms, bound +${bound})\n`);
    expect(admitted).toBeLessThanOrEqual(Math.ceil(exact + bound) + 1);
    expect(admitted).toBeGreaterThanOrEqual(Math.floor(exact * 0.8));
  });

  it('decides a warm route without a promise, and the first decision the exact way', async () => {
    const admission = a.app.get(AdmissionService);
    const route = admission.compileRoute({ routeName: 'sync-probe', policy: 'local-sync', countsTowardQuota: false });
    const auth = {
      tenantId: randomUUID(),
      tenantName: 'sync-probe',
      scopes: [],
      via: 'api-key' as const,
      limits: { perMinute: 100, perHour: 1000, monthlyRequests: 10, monthlyBandwidthBytes: 10, storageBytes: 10 },
      allowedSources: [],
      allowUnsignedUrls: false,
    };
    const first = admission.admit(route, { clientIp: '127.0.0.1', auth });
    expect(first).toBeInstanceOf(Promise);
    expect((await first).allowed).toBe(true);
    const warm = admission.admit(route, { clientIp: '127.0.0.1', auth });
    expect(warm).not.toBeInstanceOf(Promise);
    expect(warm).toMatchObject({ allowed: true, rateHeaders: expect.arrayContaining([['x-ratelimit-remaining', '98']]) });
  });
});
