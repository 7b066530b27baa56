import { TestApp, createTestApp } from './support/test-app';
import { TestBackend, startBackend, waitFor } from './support/http-backends';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey, sandboxedPlainPath } from './support/tenants';

/** A header-mode image request of the tenant, through the full pipeline. */
function fetchImage(gw: TestApp, tenant: TenantWithKey, file: string): Promise<Response> {
  return gw.fetch(`/i/insecure/plain/local:///${file}`, { headers: { 'x-api-key': tenant.key } });
}

/** n image requests; how many each backend (named by its body) answered. */
async function bodiesOf(gw: TestApp, tenant: TenantWithKey, n: number, prefix = 'w'): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await fetchImage(gw, tenant, `${prefix}-${i}.jpg`);
    expect(res.status).toBe(200);
    const body = await res.text();
    counts[body] = (counts[body] ?? 0) + 1;
  }
  return counts;
}

describe('backends admin API', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createTestApp({ config: { healthCheck: { intervalSeconds: 3600 } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('creates, reads, updates and deletes a backend, auditing each write', async () => {
    const created = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'crud-1', url: 'http://10.0.0.5:8080', weight: 40 } });
    expect(created.status).toBe(201);
    const backend = await created.json();
    expect(backend).toMatchObject({ id: expect.any(String), name: 'crud-1', url: 'http://10.0.0.5:8080', weight: 40, enabled: true, pool: 'imgproxy', isHealthy: true });
    expect(backend.state).toMatchObject({ healthy: true, circuit: 'closed' });

    expect(await (await gw.admin(`/admin/v1/backends/${backend.id}`)).json()).toMatchObject({ name: 'crud-1' });
    expect((await (await gw.admin('/admin/v1/backends')).json()).map((b: { name: string }) => b.name)).toContain('crud-1');

    const patched = await gw.admin(`/admin/v1/backends/${backend.id}`, { method: 'PATCH', json: { weight: 0, enabled: false } });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ weight: 0, enabled: false, url: 'http://10.0.0.5:8080' });

    const deleted = await gw.admin(`/admin/v1/backends/${backend.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect((await gw.admin(`/admin/v1/backends/${backend.id}`)).status).toBe(404);
    expect((await gw.admin(`/admin/v1/backends/${backend.id}`, { method: 'DELETE' })).status).toBe(404);

    const audit = await (await gw.admin(`/admin/v1/audit-log?targetType=backend&targetId=${backend.id}`)).json();
    expect(audit.items.map((e: { action: string }) => e.action)).toEqual(['backend.delete', 'backend.update', 'backend.create']);
    expect(audit.items[1]).toMatchObject({ before: { weight: 40, enabled: true }, after: { weight: 0, enabled: false } });
  });

  it('refuses invalid input with every problem named', async () => {
    const res = await gw.admin('/admin/v1/backends', {
      method: 'POST',
      json: { name: 'bad name!', url: 'ftp://x', weight: 101, pool: '', extra: 1 },
    });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe('validation_failed');
    for (const field of ['name', 'url', 'weight', 'pool', 'extra']) expect(body.error.details.join('\n')).toMatch(new RegExp(field));
    const credentials = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'creds', url: 'http://user:pw@10.0.0.5', weight: 1 } });
    expect(credentials.status).toBe(400);
    expect((await gw.admin('/admin/v1/backends/not-a-uuid', { method: 'PATCH', json: { weight: 1 } })).status).toBe(400);
    expect((await gw.fetch('/admin/v1/backends')).status).toBe(401);
  });

  it('answers 409 conflict for a taken name, on create and on rename', async () => {
    const first = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'unique-1', url: 'http://10.0.0.6', weight: 1 } });
    const second = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'unique-2', url: 'http://10.0.0.7', weight: 1 } });
    expect(first.status).toBe(201);
    const dup = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'unique-1', url: 'http://10.0.0.8', weight: 1 } });
    expect(dup.status).toBe(409);
    expect((await dup.json()).error.code).toBe('conflict');
    const rename = await gw.admin(`/admin/v1/backends/${(await second.json()).id}`, { method: 'PATCH', json: { name: 'unique-1' } });
    expect(rename.status).toBe(409);
  });
});

describe('backends from configuration', () => {
  it('are upserted by name at start: a restart with new values updates the row instead of adding one', async () => {
    const first = await createTestApp({ config: { backends: [{ name: 'seeded', url: 'http://10.0.0.9:8080', weight: 10 }], healthCheck: { intervalSeconds: 3600 } } });
    let database: string;
    try {
      database = first.database;
      expect(await (await first.admin('/admin/v1/backends')).json()).toEqual([expect.objectContaining({ name: 'seeded', weight: 10 })]);
    } finally {
      await first.close();
    }
    const second = await createTestApp({
      database,
      config: { backends: [{ name: 'seeded', url: 'http://10.0.0.10:8080', weight: 20 }], healthCheck: { intervalSeconds: 3600 } },
    });
    try {
      expect(await (await second.admin('/admin/v1/backends')).json()).toEqual([expect.objectContaining({ name: 'seeded', url: 'http://10.0.0.10:8080', weight: 20 })]);
    } finally {
      await second.close();
    }
  });
});

describe('balancing and run-time changes across instances', () => {
  let heavy: TestBackend;
  let light: TestBackend;
  let extra: TestBackend;
  let a: TestApp;
  let b: TestApp;
  let tenant: TenantWithKey;

  beforeAll(async () => {
    heavy = await startBackend({ name: 'heavy' });
    light = await startBackend({ name: 'light' });
    extra = await startBackend({ name: 'extra' });
    const config = {
      backends: [
        { name: 'heavy', url: heavy.url, weight: 70 },
        { name: 'light', url: light.url, weight: 30 },
      ],
      // Checks and the periodic reload stay out of the way: propagation must come from pub/sub.
      healthCheck: { intervalSeconds: 3600 },
      proxy: { backendsReloadSeconds: 3600 },
      ...HIGH_RATE_LIMIT_CONFIG,
    };
    a = await createTestApp({ config });
    b = await createTestApp({ config, database: a.database, redisPrefix: a.redisPrefix });
    // One tenant of the deployment: created on a, its key works on both instances.
    tenant = await createTenantWithKey(a, { scopes: ['images:read'], ...UNLIMITED });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    for (const backend of [heavy, light, extra]) await backend.stop();
  });

  it('splits traffic 70/30 by weight', async () => {
    expect(await bodiesOf(a, tenant, 200, 'split')).toEqual({ heavy: 140, light: 60 });
    const urls = [...heavy.imageRequests, ...light.imageRequests].map((r) => r.url);
    expect(urls).toContain(sandboxedPlainPath(tenant.tenantId, '', 'split-199.jpg'));
  });

  it('sends traffic to a backend added on another instance without a restart', async () => {
    const created = await a.admin('/admin/v1/backends', { method: 'POST', json: { name: 'extra', url: extra.url, weight: 100 } });
    expect(created.status).toBe(201);
    const { id } = await created.json();
    await waitFor('instance b to route to the new backend', async () => (await (await fetchImage(b, tenant, 'probe.jpg')).text()) === 'extra', 5_000);
    const before = extra.hits;
    const counts = await bodiesOf(b, tenant, 20, 'added');
    expect(counts.extra).toBeGreaterThanOrEqual(9);
    expect(extra.hits - before).toBe(counts.extra);

    // Draining (weight 0) on instance a stops new traffic on instance b.
    expect((await a.admin(`/admin/v1/backends/${id}`, { method: 'PATCH', json: { weight: 0 } })).status).toBe(200);
    await waitFor('instance b to drain the backend', async () => {
      const state = (await (await b.admin('/admin/v1/backends')).json()).find((x: { name: string }) => x.name === 'extra').state;
      return state?.available === false;
    }, 5_000);
    expect((await bodiesOf(b, tenant, 10, 'drained')).extra).toBeUndefined();

    // Deleting on instance b removes it from instance a.
    expect((await b.admin(`/admin/v1/backends/${id}`, { method: 'DELETE' })).status).toBe(204);
    await waitFor('instance a to forget the backend', async () => !(await (await a.fetch('/health/backends')).json()).backends.some((x: { name: string }) => x.name === 'extra'), 5_000);
  });
});

describe('with Redis down', () => {
  it('starts, and applies admin changes on the instance that made them (others catch up by the periodic reload)', async () => {
    const backend = await startBackend({ name: 'redis-down' });
    const gw = await createTestApp({ config: { redis: { url: 'redis://127.0.0.1:1' }, healthCheck: { intervalSeconds: 3600 }, ...HIGH_RATE_LIMIT_CONFIG } });
    try {
      const tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
      const created = await gw.admin('/admin/v1/backends', { method: 'POST', json: { name: 'redis-down', url: backend.url, weight: 1 } });
      expect(created.status).toBe(201);
      // The full pipeline runs on its Redis failure policies (rate limits `local`, usage buffered).
      const res = await fetchImage(gw, tenant, 'any.jpg');
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('redis-down');
      expect(backend.imageRequests.at(-1)?.url).toBe(sandboxedPlainPath(tenant.tenantId, '', 'any.jpg'));
    } finally {
      await gw.close();
      await backend.stop();
    }
  });
});
