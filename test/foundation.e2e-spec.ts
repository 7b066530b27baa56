import { TestBackend, startBackend } from './support/http-backends';
import { TestApp, createTestApp } from './support/test-app';

// Readiness also needs a backend that passes its health checks.
let backend: TestBackend;
const withBackend = () => ({ backends: [{ name: 'ready', url: backend.url }] });
beforeAll(async () => {
  backend = await startBackend();
});
afterAll(async () => {
  await backend.stop();
});

describe('foundation (real PostgreSQL and Redis)', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createTestApp({ config: withBackend() });
  });
  afterAll(async () => {
    await gw.close();
  });

  describe('health', () => {
    it('answers liveness without touching dependencies', async () => {
      const res = await gw.fetch('/health/live');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    });

    it('reports PostgreSQL and Redis in readiness', async () => {
      const res = await gw.fetch('/health/ready');
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.details.database.status).toBe('up');
      expect(body.details.redis).toMatchObject({ status: 'up', mode: 'redis' });
    });
  });

  describe('request id', () => {
    it('echoes a sane incoming X-Request-ID', async () => {
      const res = await gw.fetch('/health/live', { headers: { 'x-request-id': 'abc.DEF_123-xyz' } });
      expect(res.headers.get('x-request-id')).toBe('abc.DEF_123-xyz');
    });

    it('replaces an unsafe or oversized one and generates one when absent', async () => {
      const unsafe = await gw.fetch('/health/live', { headers: { 'x-request-id': 'bad id\twith "quotes"' } });
      const long = await gw.fetch('/health/live', { headers: { 'x-request-id': 'a'.repeat(129) } });
      const none = await gw.fetch('/health/live');
      for (const res of [unsafe, long, none]) expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(unsafe.headers.get('x-request-id')).not.toBe(none.headers.get('x-request-id'));
    });
  });

  describe('errors', () => {
    it('answers unknown routes with the documented body and the request id', async () => {
      const res = await gw.fetch('/no/such/route', { headers: { 'x-request-id': 'req-404' } });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const body = await res.json();
      expect(body).toEqual({ error: { code: 'not_found', message: expect.any(String), requestId: 'req-404' } });
    });

    it('answers invalid input with validation_failed and details, refusing unknown fields', async () => {
      const res = await gw.admin('/admin/v1/audit-log?limit=0&bogus=1');
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.error.code).toBe('validation_failed');
      expect(body.error.details).toEqual(expect.arrayContaining([expect.stringMatching(/limit/), expect.stringMatching(/bogus/)]));
      expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
    });
  });

  describe('admin plumbing', () => {
    it('refuses the admin API without the bearer token', async () => {
      const res = await gw.fetch('/admin/v1/audit-log');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      expect((await res.json()).error.code).toBe('unauthorized');
    });

    it('refuses a wrong token of any length', async () => {
      for (const token of ['x', 'test-admin-token-0123456789abcdeX', 'test-admin-token-0123456789abcdef-longer']) {
        const res = await gw.fetch('/admin/v1/audit-log', { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(401);
      }
    });

    it('accepts the admin token', async () => {
      const res = await gw.admin('/admin/v1/audit-log');
      expect(res.status).toBe(200);
      // The gateway's own responses are never cached, sniffed or framed.
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(await res.json()).toMatchObject({ items: [], total: 0, limit: 50, offset: 0 });
    });

    it('serves Swagger UI and the OpenAPI document', async () => {
      const ui = await gw.fetch('/docs');
      expect(ui.status).toBe(200);
      // The UI runs scripts: the strict policy of the gateway's other pages would blank it.
      expect(ui.headers.get('content-security-policy') ?? '').not.toContain("default-src 'none'");
      expect(await ui.text()).toContain('swagger');
      const doc = await (await gw.fetch('/docs-json')).json();
      expect(doc.openapi).toMatch(/^3\./);
      expect(doc.paths['/admin/v1/audit-log']).toBeDefined();
      expect(doc.components.securitySchemes.admin).toMatchObject({ type: 'http', scheme: 'bearer' });
    });

    it('exposes Prometheus metrics', async () => {
      const res = await gw.fetch('/metrics');
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('process_cpu_user_seconds_total');
    });
  });
});

describe('single-instance mode without Redis', () => {
  it('comes up ready with in-process counters', async () => {
    const gw = await createTestApp({ withoutRedis: true, config: withBackend() });
    try {
      const body = await (await gw.fetch('/health/ready')).json();
      expect(body.details.redis).toMatchObject({ status: 'up', mode: 'in-process' });
    } finally {
      await gw.close();
    }
  });
});

describe('Redis down', () => {
  it('stays ready (degraded) under the local store-failure policy and not ready under deny', async () => {
    const dead = 'redis://127.0.0.1:1';
    const local = await createTestApp({ config: { ...withBackend(), redis: { url: dead } } });
    const deny = await createTestApp({ config: { ...withBackend(), redis: { url: dead }, rateLimit: { onStoreFailure: 'deny' } } });
    try {
      const localRes = await local.fetch('/health/ready');
      expect(localRes.status).toBe(200);
      expect((await localRes.json()).details.redis).toMatchObject({ status: 'up', degraded: true, policy: 'local' });
      const denyRes = await deny.fetch('/health/ready');
      expect(denyRes.status).toBe(503);
      const body = await denyRes.json();
      expect(body.error.code).toBe('unavailable');
      expect(body.error.details.redis.status).toBe('down');
    } finally {
      await local.close();
      await deny.close();
    }
  });
});
