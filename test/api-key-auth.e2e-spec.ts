import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { Client } from 'pg';
import { ApiKeyGuard } from '../src/plugins/key-auth/api-key.guard';
import { ApiKeyService } from '../src/plugins/key-auth/api-key.service';
import { RequireScope } from '../src/plugins/key-auth/require-scope.decorator';
import { ImgproxySigner } from '../src/signing/imgproxy-signature';
import { databaseUrl } from './support/test-env';
import { TestApp, createTestApp } from './support/test-app';

/** The IP bucket is not what these tests are about; keep it out of the way. */
const config = { rateLimit: { ip: { perMinute: 1_000_000 } } };

interface CreatedKey {
  keyId: string;
  key: string;
  signingKey: string;
  signingSalt: string;
}

describe('API-key authentication (real PostgreSQL and Redis)', () => {
  let a: TestApp;
  let b: TestApp;
  let db: Client;
  let tenantId: string;

  beforeAll(async () => {
    a = await createTestApp({ config });
    // A second instance of the same deployment: same database, same Redis prefix.
    b = await createTestApp({ config, database: a.database, redisPrefix: a.redisPrefix });
    db = new Client({ connectionString: databaseUrl(a.database) });
    await db.connect();
    tenantId = (await createTenant('auth@x.example')).id;
  });
  afterAll(async () => {
    await db.end();
    await b.close();
    await a.close();
  });

  async function createTenant(email: string) {
    const res = await a.admin('/admin/v1/tenants', { method: 'POST', json: { name: email, email } });
    expect(res.status).toBe(201);
    return res.json();
  }

  async function createKey(tenant = tenantId, body: Record<string, unknown> = {}): Promise<CreatedKey> {
    const res = await a.admin(`/admin/v1/tenants/${tenant}/keys`, { method: 'POST', json: body });
    expect(res.status).toBe(201);
    return res.json();
  }

  const me = (gw: TestApp, headers: Record<string, string> = {}) => gw.fetch('/api/v1/me', { headers });
  const lookups = (gw: TestApp) => gw.app.get(ApiKeyService).stats().databaseLookups;

  /** Polls until `check` holds, failing after `deadlineMs` (the documented propagation bound). */
  async function eventually(check: () => Promise<boolean>, deadlineMs = 2_000): Promise<number> {
    const started = Date.now();
    while (!(await check())) {
      if (Date.now() - started > deadlineMs) throw new Error(`condition not met within ${deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return Date.now() - started;
  }

  async function metric(gw: TestApp, name: string, labels: string): Promise<number> {
    const text = await (await gw.fetch('/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  it('accepts the key in X-API-Key and in Authorization: Bearer, and says who the caller is', async () => {
    const key = await createKey(tenantId, { name: 'me', scopes: ['images:read'] });
    for (const headers of [{ 'x-api-key': key.key }, { authorization: `Bearer ${key.key}` }] as Array<Record<string, string>>) {
      const res = await me(a, headers);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        tenant: { id: tenantId, name: 'auth@x.example', plan: 'free', status: 'active' },
        key: { keyId: key.keyId, scopes: ['images:read'], expiresAt: null },
        limits: { perMinute: 1000, perHour: 10000, monthlyRequests: 100000, monthlyBandwidthBytes: 10737418240, storageBytes: 1073741824 },
      });
    }
  });

  it('refuses missing, malformed, unknown and wrong-secret keys alike: 401, WWW-Authenticate, one message', async () => {
    const key = await createKey();
    const wrongSecret = `igw_${key.keyId}_${'A'.repeat(32)}`;
    const unknown = `igw_ZZZZZZZZZZZZ_${'A'.repeat(32)}`;
    const messages = new Set<string>();
    for (const headers of [
      {},
      { 'x-api-key': 'hello' },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: `Bearer ${key.key}x` },
      { 'x-api-key': unknown },
      { 'x-api-key': wrongSecret },
    ] as Array<Record<string, string>>) {
      const res = await me(a, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="imgproxy-gateway"');
      const body = await res.json();
      expect(body.error.code).toBe('unauthorized');
      messages.add(body.error.message);
    }
    expect(messages.size).toBe(1);
    // The right key still works after the wrong secret was tried (the entry stays cached).
    expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
  });

  it('remembers a verified secret only for that secret: others of the same length are still refused', async () => {
    const key = await createKey();
    expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
    const secret = key.key.slice(-32);
    const flipped = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    const res = await me(a, { 'x-api-key': `igw_${key.keyId}_${flipped}` });
    expect(res.status).toBe(401);
    expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
  });

  it('ignores ?api_key= unless allowQueryKey is on', async () => {
    const key = await createKey();
    expect((await a.fetch(`/api/v1/me?api_key=${key.key}`)).status).toBe(401);
    const withQuery = await createTestApp({ config: { ...config, security: { allowQueryKey: true } }, database: a.database, redisPrefix: a.redisPrefix });
    try {
      expect((await withQuery.fetch(`/api/v1/me?api_key=${key.key}`)).status).toBe(200);
    } finally {
      await withQuery.close();
    }
  });

  it('refuses a revoked key and an expired key', async () => {
    const key = await createKey();
    expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
    await a.admin(`/admin/v1/tenants/${tenantId}/keys/${key.keyId}`, { method: 'DELETE' });
    expect((await me(a, { 'x-api-key': key.key })).status).toBe(401);

    const old = await createKey();
    expect((await me(a, { 'x-api-key': old.key })).status).toBe(200);
    const rotated = await (await a.admin(`/admin/v1/tenants/${tenantId}/keys/${old.keyId}/rotate`, { method: 'POST', json: { gracePeriodSeconds: 0 } })).json();
    const expired = await me(a, { 'x-api-key': old.key });
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toContain('Bearer');
    expect((await me(a, { 'x-api-key': rotated.key })).status).toBe(200);
  });

  it('keeps both keys working during a rotation grace period', async () => {
    const old = await createKey();
    const rotated = await (await a.admin(`/admin/v1/tenants/${tenantId}/keys/${old.keyId}/rotate`, { method: 'POST', json: {} })).json();
    expect((await me(a, { 'x-api-key': old.key })).status).toBe(200);
    expect((await me(b, { 'x-api-key': rotated.key })).status).toBe(200);
  });

  it('answers 403 forbidden for a suspended tenant, and works again after reactivation', async () => {
    const tenant = await createTenant('suspend-me@x.example');
    const key = await createKey(tenant.id);
    expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
    await a.admin(`/admin/v1/tenants/${tenant.id}/suspend`, { method: 'POST' });
    const res = await me(a, { 'x-api-key': key.key });
    expect(res.status).toBe(403);
    expect((await res.json()).error.code).toBe('forbidden');
    // Only a caller holding the secret learns about the suspension.
    expect((await me(a, { 'x-api-key': `igw_${key.keyId}_${'B'.repeat(32)}` })).status).toBe(401);
    await a.admin(`/admin/v1/tenants/${tenant.id}/reactivate`, { method: 'POST' });
    expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
  });

  it('honours @RequireScope: 403 forbidden without the scope, through the real guard and service', async () => {
    class Uploads {
      @RequireScope('images:write')
      upload(): void {}
      read(): void {}
    }
    const guard = new ApiKeyGuard(a.app.get(ApiKeyService), a.app.get(Reflector));
    const readOnly = await createKey(tenantId, { scopes: ['images:read'] });
    const writer = await createKey(tenantId, { scopes: ['images:read', 'images:write'] });
    const context = (key: string, handler: () => void) => {
      const request = { headers: { 'x-api-key': key }, query: {}, gw: { clientIp: '127.0.0.1' } };
      return new ExecutionContextHost([request, {}], Uploads, handler);
    };
    await expect(guard.canActivate(context(readOnly.key, Uploads.prototype.upload))).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    await expect(guard.canActivate(context(readOnly.key, Uploads.prototype.read))).resolves.toBe(true);
    await expect(guard.canActivate(context(writer.key, Uploads.prototype.upload))).resolves.toBe(true);
  });

  describe('caching', () => {
    it('serves a cached key without a database lookup', async () => {
      const key = await createKey();
      expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
      const before = lookups(a);
      for (let i = 0; i < 20; i++) expect((await me(a, { 'x-api-key': key.key })).status).toBe(200);
      expect(lookups(a) - before).toBe(0);
    });

    it('shares one lookup between concurrent misses of one key id', async () => {
      const key = await createKey();
      const before = lookups(a);
      const results = await Promise.all(Array.from({ length: 25 }, () => me(a, { 'x-api-key': key.key })));
      expect(results.map((r) => r.status)).toEqual(Array(25).fill(200));
      expect(lookups(a) - before).toBe(1);
    });

    it('negatively caches an unknown key id: a flood costs one database lookup per TTL', async () => {
      const keyId = 'Fl00dFl00d42';
      const secret = (i: number) => `${String(i).padStart(4, '0')}${'q'.repeat(28)}`;
      const before = lookups(a);
      const metricBefore = await metric(a, 'gateway_auth_key_lookups_total', 'result="unknown"');
      const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => me(a, { 'x-api-key': `igw_${keyId}_${secret(i)}` })));
      for (let i = 40; i < 100; i++) burst.push(await me(a, { 'x-api-key': `igw_${keyId}_${secret(i)}` }));
      expect(burst.every((r) => r.status === 401)).toBe(true);
      expect(lookups(a) - before).toBe(1);
      expect((await metric(a, 'gateway_auth_key_lookups_total', 'result="unknown"')) - metricBefore).toBe(1);
      expect(a.app.get(ApiKeyService).stats().cachedUnknownKeyIds).toBeGreaterThan(0);
    });

    it('counts failures by reason in /metrics', async () => {
      const before = await metric(a, 'gateway_auth_failures_total', 'reason="missing"');
      await me(a);
      expect((await metric(a, 'gateway_auth_failures_total', 'reason="missing"')) - before).toBe(1);
    });
  });

  describe('invalidation across instances (shared database and Redis)', () => {
    it('a key revoked on instance A is refused by instance B within 2 s', async () => {
      const key = await createKey();
      expect((await me(b, { 'x-api-key': key.key })).status).toBe(200); // cached on B
      const res = await a.admin(`/admin/v1/tenants/${tenantId}/keys/${key.keyId}`, { method: 'DELETE' });
      expect(res.status).toBe(204);
      await eventually(async () => (await me(b, { 'x-api-key': key.key })).status === 401);
    });

    it('a tenant suspended on A is refused by B within 2 s, and reactivated likewise', async () => {
      const tenant = await createTenant('cross-suspend@x.example');
      const key = await createKey(tenant.id);
      expect((await me(b, { 'x-api-key': key.key })).status).toBe(200);
      await a.admin(`/admin/v1/tenants/${tenant.id}/suspend`, { method: 'POST' });
      await eventually(async () => (await me(b, { 'x-api-key': key.key })).status === 403);
      await a.admin(`/admin/v1/tenants/${tenant.id}/reactivate`, { method: 'POST' });
      await eventually(async () => (await me(b, { 'x-api-key': key.key })).status === 200);
    });

    it('plan and override changes on A reach B\'s cached limits within 2 s', async () => {
      const tenant = await createTenant('cross-limits@x.example');
      const key = await createKey(tenant.id);
      const limitsOnB = async () => (await (await me(b, { 'x-api-key': key.key })).json()).limits;
      expect((await limitsOnB()).perMinute).toBe(1000);
      await a.admin(`/admin/v1/tenants/${tenant.id}`, { method: 'PATCH', json: { rateLimits: { perMinute: 42 } } });
      await eventually(async () => (await limitsOnB()).perMinute === 42);

      const plans = (await (await a.admin('/admin/v1/plans')).json()).items as Array<{ id: string; name: string; perHour: number }>;
      const free = plans.find((p) => p.name === 'free')!;
      await a.admin(`/admin/v1/plans/${free.id}`, { method: 'PATCH', json: { perHour: 777 } });
      await eventually(async () => (await limitsOnB()).perHour === 777);
      await a.admin(`/admin/v1/plans/${free.id}`, { method: 'PATCH', json: { perHour: free.perHour } });
    });

    it('a deleted tenant\'s keys stop working on B within 2 s', async () => {
      const tenant = await createTenant('cross-delete@x.example');
      const key = await createKey(tenant.id);
      expect((await me(b, { 'x-api-key': key.key })).status).toBe(200);
      await a.admin(`/admin/v1/tenants/${tenant.id}`, { method: 'DELETE' });
      await eventually(async () => (await me(b, { 'x-api-key': key.key })).status === 401);
    });

    it('a key id probed on B before it existed works as soon as A creates it', async () => {
      // Negative-cache entries are dropped when a key is created, not left to the TTL.
      const probe = await me(b, { 'x-api-key': `igw_${'P'.repeat(12)}_${'p'.repeat(32)}` });
      expect(probe.status).toBe(401);
      const key = await createKey();
      await eventually(async () => (await me(b, { 'x-api-key': key.key })).status === 200);
    });
  });

  it('resolves the URL-signing key and salt for signed URLs (cached, decrypted)', async () => {
    const key = await createKey(tenantId, { scopes: ['images:read'] });
    const service = b.app.get(ApiKeyService);
    const resolved = await service.resolveSigningKey(key.keyId);
    expect(resolved).toMatchObject({ auth: { tenantId, keyId: key.keyId, via: 'signed-url', scopes: ['images:read'] } });
    // The one pair, decrypted: it signs exactly like the key and salt handed out at creation.
    expect(resolved.signers.map((signer) => signer.sign('/w:10/plain/local:///a.png'))).toEqual([
      new ImgproxySigner(key.signingKey, key.signingSalt).sign('/w:10/plain/local:///a.png'),
    ]);
    await expect(service.resolveSigningKey('NoSuchKey123')).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(service.resolveSigningKey('bad')).rejects.toMatchObject({ code: 'unauthorized' });
    await a.admin(`/admin/v1/tenants/${tenantId}/keys/${key.keyId}`, { method: 'DELETE' });
    await eventually(async () => service.resolveSigningKey(key.keyId).then(() => false, (e: { code?: string }) => e.code === 'unauthorized'));
  });

  it('writes last_used_at in batches and flushes the last batch at shutdown', async () => {
    const key = await createKey();
    const c = await createTestApp({ config: { ...config, security: { lastUsedFlushSeconds: 3600 } }, database: a.database, redisPrefix: a.redisPrefix });
    try {
      for (let i = 0; i < 5; i++) expect((await me(c, { 'x-api-key': key.key })).status).toBe(200);
      const { rows } = await db.query('SELECT last_used_at FROM api_keys WHERE key_id = $1', [key.keyId]);
      expect(rows[0].last_used_at).toBeNull(); // nothing written per request
    } finally {
      await c.close();
    }
    const { rows } = await db.query('SELECT last_used_at FROM api_keys WHERE key_id = $1', [key.keyId]);
    expect(rows[0].last_used_at).toBeInstanceOf(Date);
    const listed = await (await a.admin(`/admin/v1/tenants/${tenantId}/keys/${key.keyId}`)).json();
    expect(listed.lastUsedAt).toEqual(expect.any(String));
  });
});
