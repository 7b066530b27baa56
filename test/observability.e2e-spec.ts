import { AddressInfo } from 'node:net';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Client } from 'pg';
import { createGatewayApp } from '../src/bootstrap/app.factory';
import { loadConfig } from '../src/config/config.loader';
import { GatewayConfig } from '../src/config/gateway-config';
import { GatewayMetrics } from '../src/metrics/gateway-metrics.service';
import { RequestLogService } from '../src/request-logs/request-log.service';
import { TracingService } from '../src/tracing/tracing.service';
import { TEST_ADMIN_TOKEN, createTestDatabase, testConfig } from './support/test-app';
import { databaseUrl, redisRunPrefix } from './support/test-env';

jest.setTimeout(60_000);

// ---------------------------------------------------------------------------------------------
// Helpers. Routes cannot be added to Fastify once it listens, so these tests build the app
// themselves and add throwaway routes first; the routes set `request.gw` the way the proxy,
// upload and API controllers do.

interface ObservedApp {
  app: NestFastifyApplication;
  config: GatewayConfig;
  database: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  metrics(): Promise<string>;
  close(): Promise<void>;
}

let counter = 0;

async function createObservedApp(options: { config?: Record<string, unknown>; routes?: (fastify: FastifyInstance) => void } = {}): Promise<ObservedApp> {
  const database = await createTestDatabase();
  const config = testConfig(database, `${redisRunPrefix()}obs${++counter}:`, { config: options.config });
  const app = await createGatewayApp(config);
  options.routes?.(app.getHttpAdapter().getInstance() as FastifyInstance);
  await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const token = (config.metrics.token as string | undefined) ?? '';
  return {
    app,
    config,
    database,
    fetch: (path, init) => fetch(url + path, init),
    metrics: async () => (await fetch(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).text(),
    close: () => app.close(),
  };
}

/** One sample's value in Prometheus text output (0 when absent); labels must match exactly. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = (match[2] ?? '').split(/,(?=[a-zA-Z_]+=")/).filter(Boolean).sort().join(',');
    if (got === wanted) return Number(match[3]);
  }
  return 0;
}

function samples(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const TENANT = '6f1d2f4e-3b7a-4c1e-9a0b-1c2d3e4f5a6b';

/** Stand-ins for the tenant-facing routes: they set what the real controllers set. */
function testRoutes(fastify: FastifyInstance): void {
  const asTenant = (request: FastifyRequest, route: string) => {
    request.gw.route = route;
    request.gw.auth = { tenantId: TENANT, tenantName: 't', keyId: 'KeyId0123456', scopes: [], via: 'api-key', limits: {} as never, allowedSources: [], allowUnsignedUrls: false };
    request.gw.backend = 'imgproxy-a';
  };
  fastify.get('/__test/items/:id', async () => ({ ok: true }));
  fastify.post('/__test/logged', async (request, reply) => {
    asTenant(request, 'api');
    request.gw.bytesIn = 1234;
    request.gw.bytesOut = 5678;
    return reply.code(201).send({ ok: true });
  });
  fastify.get('/__test/failing', async (request, reply) => {
    asTenant(request, 'proxy');
    return reply.code(502).send({ error: 'upstream' });
  });
  // Never answers on its own: the client aborts it.
  fastify.get('/__test/hang', (request) => {
    asTenant(request, 'proxy');
    return new Promise(() => undefined);
  });
}

// ---------------------------------------------------------------------------------------------

describe('HTTP metrics (real app, real HTTP)', () => {
  let gw: ObservedApp;

  beforeAll(async () => {
    gw = await createObservedApp({ routes: testRoutes, config: { requestLogs: { flushIntervalMs: 60_000 } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  it('counts requests by route template, method and status, never by raw path', async () => {
    const before = await gw.metrics();
    const labels = { route: '/__test/items/:id', method: 'GET', status: '200' };
    for (const id of ['1', '2', 'three']) expect((await gw.fetch(`/__test/items/${id}`)).status).toBe(200);
    const after = await gw.metrics();
    expect(sample(after, 'gateway_requests_total', labels) - sample(before, 'gateway_requests_total', labels)).toBe(3);
    expect(sample(after, 'gateway_request_duration_seconds_count', labels) - sample(before, 'gateway_request_duration_seconds_count', labels)).toBe(3);
    expect(samples(after, 'gateway_requests_total').join('\n')).not.toMatch(/__test\/items\/(1|2|three)"/);
  });

  it('labels unmatched paths as unmatched and records the status of refusals', async () => {
    const before = await gw.metrics();
    expect((await gw.fetch('/no/such/path/abc123')).status).toBe(404);
    expect((await gw.fetch('/admin/v1/audit-log')).status).toBe(401);
    const after = await gw.metrics();
    const unmatched = { route: 'unmatched', method: 'GET', status: '404' };
    const admin = { route: '/admin/v1/audit-log', method: 'GET', status: '401' };
    expect(sample(after, 'gateway_requests_total', unmatched) - sample(before, 'gateway_requests_total', unmatched)).toBe(1);
    expect(sample(after, 'gateway_requests_total', admin) - sample(before, 'gateway_requests_total', admin)).toBe(1);
    expect(after).not.toContain('abc123');
  });

  it('adds the bytes a route recorded to gateway_bytes_total', async () => {
    const before = await gw.metrics();
    expect((await gw.fetch('/__test/logged', { method: 'POST' })).status).toBe(201);
    const after = await eventually(async () => {
      const text = await gw.metrics();
      return sample(text, 'gateway_bytes_total', { direction: 'out' }) > sample(before, 'gateway_bytes_total', { direction: 'out' }) ? text : undefined;
    });
    expect(sample(after, 'gateway_bytes_total', { direction: 'in' }) - sample(before, 'gateway_bytes_total', { direction: 'in' })).toBe(1234);
    expect(sample(after, 'gateway_bytes_total', { direction: 'out' }) - sample(before, 'gateway_bytes_total', { direction: 'out' })).toBe(5678);
  });

  it('tracks in-flight requests, returns to zero after a client abort and records it as 499', async () => {
    const baseline = sample(await gw.metrics(), 'gateway_inflight_requests');
    const aborted = { route: '/__test/hang', method: 'GET', status: '499' };
    const abortedBefore = sample(await gw.metrics(), 'gateway_requests_total', aborted);
    const controller = new AbortController();
    const pending = gw.fetch('/__test/hang', { signal: controller.signal }).then(
      () => 'answered',
      (error: Error) => error.name,
    );
    try {
      // The baseline counts the scrape that measured it; the hanging request adds one.
      await eventually(async () => (sample(await gw.metrics(), 'gateway_inflight_requests') === baseline + 1 ? true : undefined));
    } finally {
      controller.abort();
    }
    expect(await pending).toBe('AbortError');
    const after = await eventually(async () => {
      const text = await gw.metrics();
      return sample(text, 'gateway_requests_total', aborted) > abortedBefore ? text : undefined;
    });
    // Only the scrape that produced this text is still in flight.
    expect(sample(after, 'gateway_inflight_requests')).toBe(baseline);
  });

  it('exports no per-tenant series unless metrics.perTenant is on', async () => {
    await gw.fetch('/__test/logged', { method: 'POST' });
    expect(samples(await gw.metrics(), 'gateway_tenant_requests_total').filter((line) => line.includes(TENANT))).toEqual([]);
  });

  it('moves the counters other modules drive through GatewayMetrics', async () => {
    const metrics = gw.app.get(GatewayMetrics);
    const before = await gw.metrics();
    metrics.rateLimited('ip');
    metrics.authFailed('unknown_key');
    metrics.ipDenied('allowlist');
    metrics.quotaExceeded('monthlyRequests');
    metrics.retried('imgproxy-a');
    metrics.storeError('redis');
    metrics.cacheRequest('hit');
    metrics.cacheCoalesced();
    metrics.cacheEvicted('disk');
    metrics.cacheBytes('disk', 4096);
    metrics.upstreamObserved('imgproxy-a', 0.02);
    metrics.backendState('imgproxy-a', 'imgproxy', true, 70);
    metrics.circuitState('imgproxy-a', 'open');
    const after = await gw.metrics();
    const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('gateway_rate_limited_total', { scope: 'ip' })).toBe(1);
    expect(delta('gateway_auth_failures_total', { reason: 'unknown_key' })).toBe(1);
    expect(delta('gateway_ip_denied_total', { reason: 'allowlist' })).toBe(1);
    expect(delta('gateway_quota_exceeded_total', { quota: 'monthlyRequests' })).toBe(1);
    expect(delta('gateway_retries_total', { backend: 'imgproxy-a' })).toBe(1);
    expect(delta('gateway_store_errors_total', { store: 'redis' })).toBe(1);
    expect(delta('gateway_cache_requests_total', { status: 'hit' })).toBe(1);
    expect(delta('gateway_cache_coalesced_total', {})).toBe(1);
    expect(delta('gateway_cache_evictions_total', { tier: 'disk' })).toBe(1);
    expect(sample(after, 'gateway_cache_bytes', { tier: 'disk' })).toBe(4096);
    expect(delta('gateway_upstream_duration_seconds_count', { backend: 'imgproxy-a' })).toBe(1);
    expect(sample(after, 'gateway_backend_up', { backend: 'imgproxy-a', pool: 'imgproxy' })).toBe(1);
    expect(sample(after, 'gateway_backend_weight', { backend: 'imgproxy-a', pool: 'imgproxy' })).toBe(70);
    expect(sample(after, 'gateway_circuit_state', { backend: 'imgproxy-a' })).toBe(2);
    metrics.circuitState('imgproxy-a', 'half-open');
    expect(sample(await gw.metrics(), 'gateway_circuit_state', { backend: 'imgproxy-a' })).toBe(1);
    metrics.backendRemoved('imgproxy-a', 'imgproxy');
    expect(samples(await gw.metrics(), 'gateway_backend_up').join('\n')).not.toContain('imgproxy-a');
  });
});

describe('request logs from the response hook', () => {
  let gw: ObservedApp;
  let db: Client;

  beforeAll(async () => {
    gw = await createObservedApp({ routes: testRoutes, config: { requestLogs: { flushIntervalMs: 60_000 } } });
    db = new Client({ connectionString: databaseUrl(gw.database) });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await gw.close();
  });

  it('writes one row per tenant-facing request, with its request id and no query string', async () => {
    const res = await gw.fetch('/__test/logged?api_key=igw_KeyId0123456_supersecretsupersecretsupersecret12&w=1', {
      method: 'POST',
      headers: { 'x-request-id': 'obs-row-1', 'x-forwarded-for': '198.51.100.9' },
    });
    expect(res.status).toBe(201);
    const service = gw.app.get(RequestLogService);
    await eventually(() => (service.pending > 0 ? true : undefined));
    await service.flush();
    const { rows } = await db.query(`SELECT *, host(client_ip) AS ip FROM request_logs WHERE request_id = 'obs-row-1'`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      tenant_id: TENANT,
      key_id: 'KeyId0123456',
      backend: 'imgproxy-a',
      method: 'POST',
      route: 'api',
      path: '/__test/logged',
      status: 201,
      bytes_in: '1234',
      bytes_out: '5678',
      ip: '127.0.0.1',
    });
    expect(rows[0].duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('logs upstream failures and client aborts (499) too, but not admin, health or unrouted requests', async () => {
    const service = gw.app.get(RequestLogService);
    await gw.fetch('/__test/failing', { headers: { 'x-request-id': 'obs-row-502' } });
    const controller = new AbortController();
    const pending = gw.fetch('/__test/hang', { headers: { 'x-request-id': 'obs-row-499' }, signal: controller.signal }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    await pending;
    await gw.fetch('/health/live', { headers: { 'x-request-id': 'obs-row-health' } });
    await gw.fetch('/admin/v1/audit-log', { headers: { 'x-request-id': 'obs-row-admin', authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    await gw.fetch('/nowhere', { headers: { 'x-request-id': 'obs-row-404' } });
    await eventually(() => (service.pending >= 2 ? true : undefined));
    await service.flush();
    const { rows } = await db.query(`SELECT request_id, status FROM request_logs WHERE request_id LIKE 'obs-row-%' ORDER BY request_id`);
    expect(rows).toEqual([
      { request_id: 'obs-row-1', status: 201 },
      { request_id: 'obs-row-499', status: 499 },
      { request_id: 'obs-row-502', status: 502 },
    ]);
  });
});

describe('per-tenant metrics and the metrics token', () => {
  it('labels requests by tenant when metrics.perTenant is on, and guards /metrics with metrics.token', async () => {
    const token = 'metrics-token-0123456789';
    const gw = await createObservedApp({ routes: testRoutes, config: { metrics: { perTenant: true, token } } });
    try {
      expect((await gw.fetch('/metrics')).status).toBe(401);
      expect((await gw.fetch('/metrics', { headers: { authorization: 'Bearer wrong-token-000' } })).status).toBe(401);
      const before = sample(await gw.metrics(), 'gateway_tenant_requests_total', { tenant: TENANT });
      await gw.fetch('/__test/logged', { method: 'POST' });
      await gw.fetch('/__test/items/1');
      const after = await eventually(async () => {
        const value = sample(await gw.metrics(), 'gateway_tenant_requests_total', { tenant: TENANT });
        return value > before ? value : undefined;
      });
      expect(after - before).toBe(1);
    } finally {
      await gw.close();
    }
  });

  it('reads METRICS_TOKEN and OTEL_EXPORTER_OTLP_ENDPOINT from the environment', () => {
    const { config } = loadConfig({
      env: { NODE_ENV: 'test', METRICS_TOKEN: 'from-env-token-123', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'gw-eu' },
      overrides: { security: { adminToken: TEST_ADMIN_TOKEN, keyPepper: 'p'.repeat(16), secretsKey: 'ab'.repeat(32) } },
    });
    expect(config.metrics.token).toBe('from-env-token-123');
    expect(config.tracing).toMatchObject({ otlpEndpoint: 'http://collector:4318', serviceName: 'gw-eu' });
  });
});

describe('OpenTelemetry export', () => {
  // Export itself is tested on a spawned gateway (observability-process.e2e-spec.ts): the OTLP
  // exporter loads node:http with import(), which jest's CommonJS sandbox cannot run.
  it('is off, with nothing subscribed, without an endpoint', async () => {
    const gw = await createObservedApp();
    try {
      expect(gw.app.get(TracingService).enabled).toBe(false);
    } finally {
      await gw.close();
    }
  });
});
