/**
 * Usage series and the billing export (docs/rate-limits-and-quotas.md) on the real gateway and
 * PostgreSQL: `GET /api/v1/usage?granularity=day` and `GET /admin/v1/usage.csv`, their validation,
 * an export larger than one page, and their Swagger documentation.
 */
import { Client } from 'pg';
import { usagePeriodOf } from '../src/usage/usage-period';
import { type Tenant, createProbedApp, createTenant } from './quota-probe';
import { type TestApp, createTestApp } from './support/test-app';
import { databaseUrl } from './support/test-env';

const roomy = { rateLimit: { ip: { perMinute: 1_000_000 } } };
const dayBefore = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);

describe('usage series and billing export', () => {
  let gw: TestApp;
  let db: Client;
  const today = usagePeriodOf(new Date()).day;
  const usage = (tenant: Tenant, query: string) => gw.fetch(`/api/v1/usage${query}`, { headers: { 'x-api-key': tenant.key } });

  beforeAll(async () => {
    gw = await createProbedApp({ config: roomy });
    db = new Client({ connectionString: databaseUrl(gw.database) });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await gw.close();
  });

  async function addDay(tenantId: string, day: string, requests: number, bytesIn: number, bytesOut: number, renders: number, storage = 0) {
    await db.query(
      `INSERT INTO usage_counters (tenant_id, period, requests, bytes_in, bytes_out, renders, storage_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [tenantId, day, requests, bytesIn, bytesOut, renders, storage],
    );
  }

  it('adds one point per day of the range, this instance\'s counts of today included', async () => {
    const tenant = await createTenant(gw);
    await addDay(tenant.id, dayBefore(today, 2), 7, 100, 200, 3);
    for (let i = 0; i < 4; i++) expect((await gw.fetch('/probe?in=1&out=10', { headers: { 'x-api-key': tenant.key } })).status).toBe(200);
    const from = dayBefore(today, 3);
    const res = await usage(tenant, `?from=${from}&to=${today}&granularity=day`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.series).toEqual([
      { date: from, requests: 0, bandwidthBytes: 0, renders: 0 },
      { date: dayBefore(today, 2), requests: 7, bandwidthBytes: 300, renders: 3 },
      { date: dayBefore(today, 1), requests: 0, bandwidthBytes: 0, renders: 0 },
      { date: today, requests: 4, bandwidthBytes: 44, renders: 0 },
    ]);
    // The rest of the report is unchanged.
    expect(body.requests).toMatchObject({ used: expect.any(Number) });
    // Without granularity there is no series; with the defaults it spans this month up to today.
    expect((await (await usage(tenant, '')).json()).series).toBeUndefined();
    const month = await (await usage(tenant, '?granularity=day')).json();
    expect(month.series.at(-1)).toEqual({ date: today, requests: 4, bandwidthBytes: 44, renders: 0 });
    expect(month.series[0].date).toBe(usagePeriodOf(new Date()).monthStart.toISOString().slice(0, 10));
  });

  it('refuses ranges that are not days, run backwards or span more than 366 days', async () => {
    const tenant = await createTenant(gw);
    for (const query of [
      '?granularity=week',
      '?from=2026-02-30&to=2026-03-01&granularity=day',
      '?from=2026-03-02&to=2026-03-01&granularity=day',
      '?from=2024-01-01&to=2025-01-01&granularity=day',
      '?from=march&granularity=day',
      '?from=2026-03-02&to=2026-03-01',
    ]) {
      const res = await usage(tenant, query);
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('validation_failed');
    }
    expect((await usage(tenant, '?from=2024-01-01&to=2024-12-31&granularity=day')).status).toBe(200);
  });

  it('exports one CSV line per tenant and day, streamed page by page', async () => {
    const first = await createTenant(gw);
    const renamed = await gw.admin(`/admin/v1/tenants/${first.id}`, { method: 'PATCH', json: { name: 'Acme, "Photos"' } });
    expect(renamed.status).toBe(200);
    const others = [await createTenant(gw), await createTenant(gw)];
    const from = '2025-01-01';
    const to = '2025-12-31';
    // 365 days for three tenants: more lines than one page of the export holds.
    for (const tenant of [first, ...others]) {
      await db.query(
        `INSERT INTO usage_counters (tenant_id, period, requests, bytes_in, bytes_out, renders, storage_bytes)
         SELECT $1, d::date, 10, 1, 2, 3, 4 FROM generate_series($2::date, $3::date, interval '1 day') AS d`,
        [tenant.id, from, to],
      );
    }
    const res = await gw.admin(`/admin/v1/usage.csv?from=${from}&to=${to}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="usage-${from}-${to}.csv"`);
    // Streamed: no length known up front.
    expect(res.headers.get('content-length')).toBeNull();
    const lines = (await res.text()).split('\r\n');
    expect(lines.pop()).toBe('');
    expect(lines[0]).toBe('tenant_id,tenant_name,date,requests,bandwidth_bytes,renders,storage_bytes');
    const rows = lines.slice(1);
    expect(rows).toHaveLength(3 * 365);
    const ours = [first, ...others].map((t) => t.id).sort();
    // Ordered by tenant then day, each (tenant, day) once: no line lost or repeated between pages.
    const keys = rows.map((row) => row.split(',').slice(0, 1)[0] + '|' + row.match(/(\d{4}-\d{2}-\d{2})/)![1]);
    expect(new Set(keys).size).toBe(rows.length);
    expect([...new Set(rows.map((row) => row.split(',')[0]))]).toEqual(ours);
    expect(rows.find((row) => row.startsWith(first.id))).toBe(`${first.id},"Acme, ""Photos""",${from},10,3,3,4`);
  });

  it('refuses a bad range and a caller without the admin token', async () => {
    expect((await gw.admin('/admin/v1/usage.csv?from=2025-01-02&to=2025-01-01')).status).toBe(400);
    expect((await gw.admin('/admin/v1/usage.csv?from=2024-01-01&to=2025-06-01')).status).toBe(400);
    expect((await gw.fetch('/admin/v1/usage.csv')).status).toBe(401);
    // The default range: this month up to today.
    const month = await gw.admin('/admin/v1/usage.csv');
    expect(month.status).toBe(200);
    expect((await month.text()).split('\r\n')[0]).toBe('tenant_id,tenant_name,date,requests,bandwidth_bytes,renders,storage_bytes');
  });
});

describe('Swagger', () => {
  it('documents the series and the export with examples', async () => {
    // The gateway exactly as main.ts builds it (the probe harness adds a route of its own).
    const gw = await createTestApp();
    try {
      const doc = await (await gw.fetch('/docs-json')).json();
      const params = doc.paths['/api/v1/usage'].get.parameters.map((p: { name: string }) => p.name);
      expect(params).toEqual(expect.arrayContaining(['from', 'to', 'granularity']));
      const series = doc.components.schemas.TenantUsageResponseDto.properties.series;
      expect(series.items.$ref).toBe('#/components/schemas/UsageSeriesPointDto');
      expect(series.example[0]).toMatchObject({ date: expect.any(String), requests: expect.any(Number), bandwidthBytes: expect.any(Number), renders: expect.any(Number) });
      const csv = doc.paths['/admin/v1/usage.csv'].get;
      expect(csv.responses['200'].content['text/csv'].schema.example).toMatch(/^tenant_id,tenant_name,date,requests,bandwidth_bytes,renders,storage_bytes\r\n/);
      expect(csv.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['from', 'to']));
    } finally {
      await gw.close();
    }
  });
});
