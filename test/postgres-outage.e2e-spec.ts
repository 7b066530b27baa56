import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runMigrations } from '../src/database/migration-runner';
import { OwnPostgres } from './support/postgres-server';
import { TestApp, createTestApp } from './support/test-app';
import { TestBackend, startBackend, waitFor } from './support/http-backends';
import { TenantWithKey, UNLIMITED, createTenantWithKey } from './support/tenants';

jest.setTimeout(120_000);

/**
 * PostgreSQL going away is the service's state, not a bug: every request that needs it answers
 * 503 `unavailable` with `Retry-After` (docs/architecture.md, Errors), requests that do not need
 * it (a cached key) keep being served, and everything works again once it is back, without a
 * restart. Runs against a private server that is really stopped and started.
 */
describe('PostgreSQL outage', () => {
  let pg: OwnPostgres;
  let gw: TestApp;
  let root: string;
  let cached: TenantWithKey;
  let uncached: TenantWithKey;
  let png: Buffer;
  let backend: TestBackend;

  beforeAll(async () => {
    pg = await OwnPostgres.start();
    const url = await pg.createDatabase('gw_outage');
    await runMigrations(url);
    root = mkdtempSync(join(tmpdir(), 'igw-pg-outage-'));
    backend = await startBackend({ name: 'images' });
    gw = await createTestApp({
      database: 'gw_outage',
      // A backend, so readiness rests on the database alone (no backend at all is unready too).
      config: { database: { url }, uploads: { root }, rateLimit: { ip: { perMinute: 100_000 } }, backends: [{ name: 'images', url: backend.url, weight: 1 }] },
    });
    const scopes = ['images:read', 'images:write', 'usage:read'];
    cached = await createTenantWithKey(gw, { scopes, ...UNLIMITED });
    uncached = await createTenantWithKey(gw, { scopes, ...UNLIMITED });
    expect((await gw.fetch('/api/v1/me', { headers: { 'x-api-key': cached.key } })).status).toBe(200);
    png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00ff00' } }).png().toBuffer();
  });
  afterAll(async () => {
    await gw?.close();
    await pg?.destroy();
    await backend?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const adminWrite = (email: string) => gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: email, email } });
  const as = (tenant: TenantWithKey, path: string, init: RequestInit = {}) =>
    gw.fetch(path, { ...init, headers: { 'x-api-key': tenant.key, ...(init.headers as Record<string, string>) } });
  const upload = (tenant: TenantWithKey) => as(tenant, '/api/v1/images', { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });

  async function expectUnavailable(res: Response): Promise<void> {
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = await res.json();
    expect(body.error).toMatchObject({ code: 'unavailable', requestId: res.headers.get('x-request-id') });
    expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres/i);
  }

  it('answers 503 unavailable with Retry-After while the database is down, and serves cached keys', async () => {
    await pg.stop('immediate');

    await expectUnavailable(await adminWrite('during-outage@pg.example'));
    await expectUnavailable(await gw.admin('/admin/v1/tenants'));
    await expectUnavailable(await as(uncached, '/api/v1/me'));
    await expectUnavailable(await upload(cached));
    await expectUnavailable(await as(cached, '/api/v1/usage'));
    const ready = await gw.fetch('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).not.toBeNull();

    // The hot path needs no PostgreSQL for a key it already holds.
    expect((await as(cached, '/api/v1/me')).status).toBe(200);
  });

  it('recovers by itself once the database is back', async () => {
    await pg.resume();
    await waitFor('the first admin write after the outage', async () => (await adminWrite(`after-${Date.now()}@pg.example`)).status === 201, 20_000, 250);

    expect((await as(uncached, '/api/v1/me')).status).toBe(200);
    expect((await upload(cached)).status).toBe(201);
    expect((await as(cached, '/api/v1/usage')).status).toBe(200);
    expect((await gw.fetch('/health/ready')).status).toBe(200);
  });
});
