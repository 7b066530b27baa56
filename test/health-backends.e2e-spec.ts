import { TEST_ADMIN_TOKEN, TestApp, createTestApp } from './support/test-app';
import { TestBackend, startBackend, waitFor } from './support/http-backends';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey, sandboxedPlainPath } from './support/tenants';

interface BackendReport {
  name: string;
  healthy: boolean;
  circuit: string;
  lastCheck: string | null;
  url?: string;
}

async function report(gw: TestApp, admin = false): Promise<BackendReport[]> {
  const res = await gw.fetch('/health/backends', admin ? { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } } : {});
  expect(res.status).toBe(200);
  return (await res.json()).backends;
}

async function healthOf(gw: TestApp, name: string): Promise<boolean> {
  return (await report(gw)).find((b) => b.name === name)!.healthy;
}

/** Serves n image requests of the tenant through the full pipeline; the answering backends' names. */
let images = 0;

async function served(gw: TestApp, tenant: TenantWithKey, n: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    // A new image each time: a cached one would not show which backend the balancer chose.
    const res = await gw.fetch(`/i/insecure/plain/local:///h-${++images}.jpg`, { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(200);
    bodies.push(await res.text());
  }
  return bodies;
}

describe('active health checks (1 s interval, unhealthy after 3, healthy after 2)', () => {
  let a: TestBackend;
  let b: TestBackend;
  let gw: TestApp;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    a = await startBackend({ name: 'checked-a' });
    b = await startBackend({ name: 'checked-b' });
    gw = await createTestApp({
      config: {
        backends: [
          { name: a.name, url: a.url, weight: 1 },
          { name: b.name, url: b.url, weight: 1 },
        ],
        healthCheck: { intervalSeconds: 1, timeoutSeconds: 1, unhealthyThreshold: 3, healthyThreshold: 2 },
        ...HIGH_RATE_LIMIT_CONFIG,
      },
    });
    tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
  });
  afterAll(async () => {
    await gw.close();
    await a.stop();
    await b.stop();
  });

  it('reports every backend without URLs to the public and with URLs to admins', async () => {
    await waitFor('a first check', async () => (await report(gw)).every((r) => r.lastCheck !== null));
    const pub = await report(gw);
    expect(pub.map((r) => r.name).sort()).toEqual(['checked-a', 'checked-b']);
    expect(pub[0]).toMatchObject({ healthy: true, circuit: 'closed', lastCheck: expect.any(String) });
    expect(JSON.stringify(pub)).not.toContain('127.0.0.1');
    const admin = await report(gw, true);
    expect(admin.find((r) => r.name === 'checked-a')!.url).toBe(a.url);
    const wrongToken = await gw.fetch('/health/backends', { headers: { authorization: 'Bearer not-the-admin-token' } });
    expect(JSON.stringify(await wrongToken.json())).not.toContain('127.0.0.1');
  });

  it('takes a backend out after 3 failed checks, persists it, and brings it back after 2 good ones', async () => {
    a.failedHealthChecks = 0;
    a.healthy = false;
    // Invariant rather than timing: whenever the gateway says "unhealthy", 3 checks had failed.
    await waitFor('checked-a to be marked unhealthy', async () => {
      const healthy = await healthOf(gw, 'checked-a');
      if (!healthy) expect(a.failedHealthChecks).toBeGreaterThanOrEqual(3);
      return !healthy;
    });
    expect(new Set(await served(gw, tenant, 6))).toEqual(new Set(['checked-b']));
    expect(b.imageRequests.at(-1)?.url).toBe(sandboxedPlainPath(tenant.tenantId, '', `h-${images}.jpg`));
    const rows = await (await gw.admin('/admin/v1/backends')).json();
    expect(rows.find((r: { name: string }) => r.name === 'checked-a')).toMatchObject({ isHealthy: false, lastHealthCheck: expect.any(String) });
    expect((await gw.fetch('/health/ready')).status).toBe(200);

    const checksBefore = a.healthChecks;
    a.healthy = true;
    await waitFor('checked-a to be healthy again', async () => {
      const healthy = await healthOf(gw, 'checked-a');
      if (healthy) expect(a.healthChecks - checksBefore).toBeGreaterThanOrEqual(2);
      return healthy;
    });
    expect(new Set(await served(gw, tenant, 6))).toEqual(new Set(['checked-a', 'checked-b']));
    await waitFor('the recovery to be persisted', async () => {
      const list = await (await gw.admin('/admin/v1/backends')).json();
      return list.find((r: { name: string }) => r.name === 'checked-a').isHealthy === true;
    });
  });

  it('answers 503 no_healthy_backend and is not ready when every backend is down', async () => {
    a.healthy = false;
    b.healthy = false;
    await waitFor('both backends to be marked unhealthy', async () => (await report(gw)).every((r) => !r.healthy));
    const before = a.hits + b.hits;
    const res = await gw.fetch('/i/insecure/plain/local:///none.jpg', { headers: { 'x-api-key': tenant.key } });
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('no_healthy_backend');
    expect(a.hits + b.hits).toBe(before);
    const ready = await gw.fetch('/health/ready');
    expect(ready.status).toBe(503);
    const body = await ready.json();
    expect(body.error.code).toBe('unavailable');
    expect(body.error.details.backends).toMatchObject({ status: 'down', noHealthyBackend: ['imgproxy'] });
    expect((await gw.fetch('/health/live')).status).toBe(200);

    b.healthy = true;
    await waitFor('readiness to return', async () => (await gw.fetch('/health/ready')).status === 200);
    expect(new Set(await served(gw, tenant, 3))).toEqual(new Set(['checked-b']));
    a.healthy = true;
  });
});

describe('readiness without backends', () => {
  it('is not ready with no backend configured: every image request would answer 503', async () => {
    const gw = await createTestApp();
    try {
      const res = await gw.fetch('/health/ready');
      expect(res.status).toBe(503);
      expect((await res.json()).error.details.backends).toMatchObject({ status: 'down', pools: 0, noBackendConfigured: true });
      expect(await report(gw)).toEqual([]);
      // The admin API, which adds the first backend, still answers.
      expect((await gw.admin('/admin/v1/backends')).status).toBe(200);
    } finally {
      await gw.close();
    }
  });
});
