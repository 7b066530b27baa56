import { TestApp, createTestApp } from './support/test-app';
import { TestBackend, startBackend } from './support/http-backends';
import { metricValue } from './support/metrics';
import { HIGH_RATE_LIMIT_CONFIG, TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';

/**
 * Passive health rests on what a backend does, not on what a tenant's URLs make it answer
 * (docs/proxy-and-backends.md, Balancing, failover, passive health): any HTTP answer, 5xx
 * included, keeps a backend in service; transport failures open its circuit, but open circuits
 * never take more than half a pool's weight; readiness tells the truth about both.
 */

interface BackendReport {
  name: string;
  circuit: string;
  circuitIgnored: boolean;
  available: boolean;
  healthy: boolean;
}

const circuitConfig = { failureThreshold: 2, cooldownSeconds: 3600 };

async function gateway(backends: TestBackend[], proxy: Record<string, unknown> = {}): Promise<TestApp> {
  return createTestApp({
    config: {
      ...HIGH_RATE_LIMIT_CONFIG,
      backends: backends.map((b) => ({ name: b.name, url: b.url, weight: 1 })),
      healthCheck: { intervalSeconds: 3600 },
      proxy: { circuitBreaker: circuitConfig, ...proxy },
    },
  });
}

async function report(gw: TestApp, name: string): Promise<BackendReport> {
  const body = (await (await gw.fetch('/health/backends')).json()) as { backends: BackendReport[] };
  return body.backends.find((b) => b.name === name)!;
}

async function readiness(gw: TestApp): Promise<{ status: number; backends: Record<string, unknown> }> {
  const res = await gw.fetch('/health/ready');
  const body = await res.json();
  return { status: res.status, backends: (body.details ?? body.error?.details)?.backends };
}

const image = (tenant: TenantWithKey, file: string) => ({ path: `/i/insecure/plain/local:///${file}`, init: { headers: { 'x-api-key': tenant.key } } });

describe('one tenant cannot take the image service down', () => {
  let backend: TestBackend;
  let gw: TestApp;
  let a: TenantWithKey;
  let b: TenantWithKey;

  beforeAll(async () => {
    // imgproxy answers 5xx for a source it cannot fetch or process: tenant A's sources are broken.
    backend = await startBackend({
      name: 'only-imgproxy',
      handler: (req, res) => {
        if (req.url?.includes(`/tenants/${a.tenantId}/`)) {
          res.statusCode = req.url.includes('bad-gateway') ? 502 : 500;
          res.end('source failed');
          return;
        }
        res.setHeader('content-type', 'image/png');
        res.end('png');
      },
    });
    gw = await gateway([backend]);
    a = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
    b = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
  });
  afterAll(async () => {
    await gw.close();
    await backend.stop();
  });

  it("passes tenant A's 500s and 502s through, and tenant B still gets its images", async () => {
    for (let i = 0; i < 12; i++) {
      const { path, init } = image(a, i % 2 ? `bad-gateway-${i}.jpg` : `broken-${i}.jpg`);
      const res = await gw.fetch(path, init);
      expect(res.status).toBe(i % 2 ? 502 : 500);
      expect(await res.text()).toBe('source failed');
    }
    for (let i = 0; i < 5; i++) {
      const { path, init } = image(b, `fine-${i}.jpg`);
      const res = await gw.fetch(path, init);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('png');
    }
  });

  it('keeps the circuit closed and readiness plainly ready', async () => {
    expect(await report(gw, 'only-imgproxy')).toMatchObject({ circuit: 'closed', circuitIgnored: false, available: true });
    const ready = await readiness(gw);
    expect(ready.status).toBe(200);
    expect(ready.backends).toEqual({ status: 'up', pools: 1 });
  });
});

describe('transport failures open a circuit, within half the pool weight', () => {
  it('ejects a backend that drops connections, and readiness says degraded', async () => {
    const dropping = await startBackend({ name: 'dropping', handler: (req) => req.socket.destroy() });
    const steady = await startBackend({ name: 'steady' });
    const gw = await gateway([dropping, steady], { retries: 0 });
    try {
      const tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await gw.fetch(image(tenant, `t-${i}.jpg`).path, image(tenant, '').init)).status);
      // Round robin sends every other request to `dropping` until its second failure opens it.
      expect(statuses.filter((s) => s === 502)).toHaveLength(2);
      expect(statuses.slice(4)).toEqual([200, 200, 200, 200]);
      expect(await report(gw, 'dropping')).toMatchObject({ circuit: 'open', circuitIgnored: false, available: false, healthy: true });

      const ready = await readiness(gw);
      expect(ready.status).toBe(200);
      expect(ready.backends).toMatchObject({ status: 'up', degraded: true, openCircuits: ['dropping'], ignoredCircuits: [] });
    } finally {
      await gw.close();
      await dropping.stop();
      await steady.stop();
    }
  });

  it('keeps a lone backend in service past its open circuit (panic threshold), counted and reported', async () => {
    let drop = true;
    const lone = await startBackend({
      name: 'lone',
      handler: (req, res) => {
        if (drop) req.socket.destroy();
        else res.end('back');
      },
    });
    const gw = await gateway([lone], { retries: 0 });
    try {
      const tenant = await createTenantWithKey(gw, { scopes: ['images:read'], ...UNLIMITED });
      for (let i = 0; i < 3; i++) expect((await gw.fetch(image(tenant, `p-${i}.jpg`).path, image(tenant, '').init)).status).toBe(502);
      expect(await report(gw, 'lone')).toMatchObject({ circuit: 'open', circuitIgnored: true, available: true });

      // Without the threshold every tenant would get 503 no_healthy_backend for the whole cool-down.
      drop = false;
      const res = await gw.fetch(image(tenant, 'after.jpg').path, image(tenant, '').init);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('back');
      expect(await metricValue(gw, 'gateway_circuit_panic_total', 'pool="imgproxy",backend="lone"')).toBeGreaterThanOrEqual(2);
      expect(await metricValue(gw, 'gateway_upstream_failures_total', 'backend="lone",kind="connect"')).toBe(3);

      const ready = await readiness(gw);
      expect(ready.status).toBe(200);
      expect(ready.backends).toMatchObject({ status: 'up', degraded: true, openCircuits: ['lone'], ignoredCircuits: ['lone'] });
    } finally {
      await gw.close();
      await lone.stop();
    }
  });
});
