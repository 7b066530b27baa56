import { Client } from 'pg';
import { register } from 'prom-client';
import { RequestLogEntry } from '../src/request-logs/request-log.entry';
import { RequestLogRepository } from '../src/request-logs/request-log.repository';
import { RequestLogService } from '../src/request-logs/request-log.service';
import { TestApp, createTestApp } from './support/test-app';
import { databaseUrl } from './support/test-env';

jest.setTimeout(60_000);

const TENANT_A = '11111111-1111-4111-8111-111111111111';
const TENANT_B = '22222222-2222-4222-8222-222222222222';

let seq = 0;
function entry(overrides: Partial<RequestLogEntry> = {}): RequestLogEntry {
  seq += 1;
  return {
    createdAt: new Date(),
    requestId: `rl-${seq}`,
    tenantId: TENANT_A,
    keyId: 'KeyA00000001',
    backend: 'imgproxy-a',
    method: 'GET',
    route: 'proxy',
    path: `/i/insecure/rs:fit:100/plain/local:///${seq}.jpg`,
    status: 200,
    durationMs: 12,
    bytesIn: 0,
    bytesOut: 1000 + seq,
    clientIp: '203.0.113.7',
    cache: null,
    ...overrides,
  };
}

async function dropped(): Promise<number> {
  const metric = register.getSingleMetric('gateway_request_log_dropped_total');
  return (await metric!.get()).values[0]?.value ?? 0;
}

describe('request logs: queue, writer, retention (real PostgreSQL)', () => {
  let gw: TestApp;
  let service: RequestLogService;
  let db: Client;

  beforeAll(async () => {
    // A small queue and a timer that never fires during the test: flushes are explicit.
    gw = await createTestApp({ config: { requestLogs: { queueSize: 10, batchSize: 4, flushIntervalMs: 600_000, retentionDays: 30 } } });
    service = gw.app.get(RequestLogService);
    db = new Client({ connectionString: databaseUrl(gw.database) });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await gw.close();
  });
  beforeEach(async () => {
    await service.flush();
    await db.query('DELETE FROM request_logs');
  });

  it('writes queued entries in batches with every field', async () => {
    const e = entry({ tenantId: TENANT_B, keyId: null, backend: null, clientIp: '2001:db8::1', status: 404, bytesIn: 7, cache: 'hit' });
    expect(service.enqueue(e)).toBe(true);
    await service.flush();
    const { rows } = await db.query(`SELECT request_id, tenant_id, key_id, backend, method, route, path, status, duration_ms, bytes_in, bytes_out, host(client_ip) AS ip, cache FROM request_logs`);
    expect(rows).toEqual([
      {
        request_id: e.requestId,
        tenant_id: TENANT_B,
        key_id: null,
        backend: null,
        method: 'GET',
        route: 'proxy',
        path: e.path,
        status: 404,
        duration_ms: 12,
        bytes_in: '7',
        bytes_out: String(e.bytesOut),
        ip: '2001:db8::1',
        cache: 'hit',
      },
    ]);
  });

  it('drops the newest entries when the queue is full and counts them', async () => {
    const before = await dropped();
    // batchSize 4 would start an early flush; fill the queue synchronously so it cannot run in between.
    const accepted = Array.from({ length: 15 }, (_, i) => service.enqueue(entry({ requestId: `full-${i}` })));
    expect(accepted.filter(Boolean)).toHaveLength(10);
    expect(accepted.slice(10)).toEqual([false, false, false, false, false]);
    expect((await dropped()) - before).toBe(5);
    await service.flush();
    const { rows } = await db.query(`SELECT request_id FROM request_logs ORDER BY id`);
    expect(rows.map((r) => r.request_id)).toEqual(Array.from({ length: 10 }, (_, i) => `full-${i}`));
    expect(service.pending).toBe(0);
  });

  it('flushes a full batch without waiting for the timer', async () => {
    for (let i = 0; i < 4; i++) service.enqueue(entry({ requestId: `early-${i}` }));
    const deadline = Date.now() + 5_000;
    let count = 0;
    while (Date.now() < deadline) {
      count = Number((await db.query(`SELECT count(*) AS n FROM request_logs WHERE request_id LIKE 'early-%'`)).rows[0].n);
      if (count === 4) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(count).toBe(4);
  });

  it('retention deletes only rows older than retentionDays, in batches', async () => {
    const now = new Date('2026-11-20T12:00:00Z');
    const day = 86_400_000;
    const old = [31, 45, 400].map((days) => entry({ requestId: `old-${days}`, createdAt: new Date(now.getTime() - days * day) }));
    const recent = [0, 1, 29].map((days) => entry({ requestId: `new-${days}`, createdAt: new Date(now.getTime() - days * day) }));
    for (const e of [...old, ...recent]) service.enqueue(e);
    await service.flush();
    expect(await service.purgeExpired(now)).toBe(3);
    const { rows } = await db.query(`SELECT request_id FROM request_logs ORDER BY request_id`);
    expect(rows.map((r) => r.request_id)).toEqual(['new-0', 'new-1', 'new-29']);
    expect(await service.purgeExpired(now)).toBe(0);
  });

  it('deletes at most one batch per statement', async () => {
    const repository = gw.app.get(RequestLogRepository);
    const long = new Date('2020-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++) service.enqueue(entry({ requestId: `batch-${i}`, createdAt: long }));
    await service.flush();
    const cutoff = new Date('2021-01-01T00:00:00Z');
    expect(await repository.deleteOlderThan(cutoff, 2)).toBe(2);
    expect(await repository.deleteOlderThan(cutoff, 2)).toBe(2);
    expect(await repository.deleteOlderThan(cutoff, 2)).toBe(1);
    expect(await repository.deleteOlderThan(cutoff, 2)).toBe(0);
  });
});

describe('GET /admin/v1/request-logs', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createTestApp({ config: { requestLogs: { flushIntervalMs: 600_000 } } });
    const service = gw.app.get(RequestLogService);
    const base = Date.parse('2026-11-10T00:00:00Z');
    // 12 rows for A (one per hour, statuses cycling 200/404/502), 3 for B.
    for (let i = 0; i < 12; i++) {
      service.enqueue(entry({ requestId: `qa-${i}`, createdAt: new Date(base + i * 3_600_000), status: [200, 404, 502][i % 3] }));
    }
    for (let i = 0; i < 3; i++) service.enqueue(entry({ requestId: `qb-${i}`, tenantId: TENANT_B, createdAt: new Date(base + i * 3_600_000) }));
    await service.flush();
  });
  afterAll(async () => {
    await gw.close();
  });

  const list = async (query: string) => {
    const res = await gw.admin(`/admin/v1/request-logs${query}`);
    return { status: res.status, body: await res.json() };
  };

  it('requires the admin token', async () => {
    expect((await gw.fetch('/admin/v1/request-logs')).status).toBe(401);
  });

  it('filters by tenant, newest first, with the total', async () => {
    const { status, body } = await list(`?tenantId=${TENANT_B}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ total: 3, limit: 50, offset: 0 });
    expect(body.items.map((i: { requestId: string }) => i.requestId)).toEqual(['qb-2', 'qb-1', 'qb-0']);
    expect(body.items[0]).toMatchObject({
      tenantId: TENANT_B,
      keyId: 'KeyA00000001',
      backend: 'imgproxy-a',
      method: 'GET',
      route: 'proxy',
      status: 200,
      durationMs: 12,
      bytesIn: 0,
      clientIp: '203.0.113.7',
      createdAt: '2026-11-10T02:00:00.000Z',
    });
    expect(typeof body.items[0].bytesOut).toBe('number');
  });

  it('filters by time range (from inclusive, to exclusive) and by exact status or status class', async () => {
    const range = await list(`?tenantId=${TENANT_A}&from=2026-11-10T03:00:00Z&to=2026-11-10T06:00:00Z`);
    expect(range.body.items.map((i: { requestId: string }) => i.requestId)).toEqual(['qa-5', 'qa-4', 'qa-3']);
    const exact = await list(`?tenantId=${TENANT_A}&status=404`);
    expect(exact.body.total).toBe(4);
    expect(exact.body.items.every((i: { status: number }) => i.status === 404)).toBe(true);
    const cls = await list(`?status=5xx`);
    expect(cls.body.total).toBe(4);
    expect(cls.body.items.every((i: { status: number }) => i.status === 502)).toBe(true);
    const byId = await list(`?requestId=qa-7`);
    expect(byId.body.items.map((i: { requestId: string }) => i.requestId)).toEqual(['qa-7']);
  });

  it('paginates with limit and offset', async () => {
    const first = await list(`?tenantId=${TENANT_A}&limit=5&offset=0`);
    const second = await list(`?tenantId=${TENANT_A}&limit=5&offset=5`);
    const last = await list(`?tenantId=${TENANT_A}&limit=5&offset=10`);
    expect(first.body).toMatchObject({ total: 12, limit: 5, offset: 0 });
    const ids = [first, second, last].flatMap((page) => page.body.items.map((i: { requestId: string }) => i.requestId));
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => `qa-${11 - i}`));
  });

  it('refuses invalid filters with validation_failed', async () => {
    const { status, body } = await list('?tenantId=not-a-uuid&status=600&limit=0&from=yesterday');
    expect(status).toBe(400);
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.details).toEqual(
      expect.arrayContaining([expect.stringMatching(/tenantId/), expect.stringMatching(/status/), expect.stringMatching(/limit/), expect.stringMatching(/from/)]),
    );
  });

  it('is documented in Swagger', async () => {
    const doc = await (await gw.fetch('/docs-json')).json();
    const op = doc.paths['/admin/v1/request-logs'].get;
    expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['tenantId', 'from', 'to', 'status', 'limit', 'offset']));
  });
});

describe('shutdown', () => {
  it('writes what is still queued before the database pool closes', async () => {
    const gw = await createTestApp({ config: { requestLogs: { flushIntervalMs: 600_000 } } });
    const service = gw.app.get(RequestLogService);
    for (let i = 0; i < 7; i++) service.enqueue(entry({ requestId: `shutdown-${i}` }));
    await gw.close();
    const db = new Client({ connectionString: databaseUrl(gw.database) });
    await db.connect();
    try {
      const { rows } = await db.query(`SELECT count(*) AS n FROM request_logs WHERE request_id LIKE 'shutdown-%'`);
      expect(Number(rows[0].n)).toBe(7);
    } finally {
      await db.end();
    }
  });
});
