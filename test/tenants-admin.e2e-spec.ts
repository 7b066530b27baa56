import { Client } from 'pg';
import { databaseUrl } from './support/test-env';
import { TestApp, createTestApp } from './support/test-app';

/** Admin API for tenants, plans, keys and allowlists, against the real app, PostgreSQL and Redis. */
describe('tenants admin API', () => {
  let gw: TestApp;
  let db: Client;

  beforeAll(async () => {
    gw = await createTestApp({
      config: {
        plans: [
          { name: 'free', perMinute: 1000, perHour: 10000, monthlyRequests: 100000, monthlyBandwidthBytes: 10737418240, storageBytes: 1073741824 },
          { name: 'pro', perMinute: 5000, perHour: 100000, burst: 800, monthlyRequests: 5000000, dailyRequests: 200000, monthlyBandwidthBytes: 536870912000, storageBytes: 53687091200 },
        ],
      },
    });
    db = new Client({ connectionString: databaseUrl(gw.database) });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await gw.close();
  });

  async function json(res: Response) {
    return res.status === 204 ? undefined : res.json();
  }

  async function createTenant(email: string, extra: Record<string, unknown> = {}) {
    const res = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: `Tenant ${email}`, email, ...extra } });
    expect(res.status).toBe(201);
    return res.json();
  }

  async function auditFor(targetType: string, targetId: string) {
    const res = await gw.admin(`/admin/v1/audit-log?targetType=${targetType}&targetId=${encodeURIComponent(targetId)}`);
    expect(res.status).toBe(200);
    return (await res.json()).items as Array<{ action: string; before: unknown; after: unknown; actor: string }>;
  }

  describe('plans', () => {
    it('seeds the config plans at start', async () => {
      const body = await json(await gw.admin('/admin/v1/plans'));
      expect(body.items.map((p: { name: string }) => p.name)).toEqual(['free', 'pro']);
      expect(body.items[1]).toMatchObject({ name: 'pro', perMinute: 5000, burst: 800, dailyRequests: 200000, storageBytes: 53687091200 });
    });

    it('creates, reads and updates a plan, audited; a duplicate name is 409', async () => {
      const create = await gw.admin('/admin/v1/plans', {
        method: 'POST',
        json: { name: 'biz', perMinute: 2000, perHour: 50000, monthlyRequests: 1000000, monthlyBandwidthBytes: 1e11, storageBytes: 1e10 },
      });
      expect(create.status).toBe(201);
      const plan = await create.json();
      expect(plan).toMatchObject({ name: 'biz', burst: null, dailyRequests: null });
      expect((await gw.admin(`/admin/v1/plans/${plan.id}`)).status).toBe(200);

      const dup = await gw.admin('/admin/v1/plans', {
        method: 'POST',
        json: { name: 'biz', perMinute: 1, perHour: 1, monthlyRequests: 1, monthlyBandwidthBytes: 1, storageBytes: 1 },
      });
      expect(dup.status).toBe(409);
      expect((await dup.json()).error.code).toBe('conflict');

      const patch = await gw.admin(`/admin/v1/plans/${plan.id}`, { method: 'PATCH', json: { perMinute: 2500, dailyRequests: 9000 } });
      expect(patch.status).toBe(200);
      expect(await patch.json()).toMatchObject({ perMinute: 2500, dailyRequests: 9000 });
      const cleared = await json(await gw.admin(`/admin/v1/plans/${plan.id}`, { method: 'PATCH', json: { dailyRequests: null } }));
      expect(cleared.dailyRequests).toBeNull();

      const audit = await auditFor('plan', plan.id);
      expect(audit.map((a) => a.action)).toEqual(['plan.update', 'plan.update', 'plan.create']);
      expect(audit[1]).toMatchObject({ before: { perMinute: 2000 }, after: { perMinute: 2500 } });
    });

    it('validates plans and answers 404 for unknown ids', async () => {
      const bad = await gw.admin('/admin/v1/plans', { method: 'POST', json: { name: 'Bad Name', perMinute: 0 } });
      expect(bad.status).toBe(400);
      const body = await bad.json();
      expect(body.error.code).toBe('validation_failed');
      expect(body.error.details).toEqual(expect.arrayContaining([expect.stringMatching(/name/), expect.stringMatching(/perMinute/), expect.stringMatching(/storageBytes/)]));
      expect((await gw.admin('/admin/v1/plans/00000000-0000-4000-8000-000000000000', { method: 'PATCH', json: { perMinute: 5 } })).status).toBe(404);
      expect((await gw.admin('/admin/v1/plans/not-a-uuid')).status).toBe(404);
    });
  });

  describe('tenants', () => {
    it('creates a tenant on the default plan with the documented fields, audited', async () => {
      const res = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: 'Acme', email: 'ops@acme.example' } });
      expect(res.status).toBe(201);
      const tenant = await res.json();
      expect(tenant).toMatchObject({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        name: 'Acme',
        email: 'ops@acme.example',
        plan: 'free',
        status: 'active',
        allowedSources: [],
        allowUnsignedUrls: false,
        rateLimits: {},
        quotas: {},
        limits: { perMinute: 1000, perHour: 10000, monthlyRequests: 100000, monthlyBandwidthBytes: 10737418240, storageBytes: 1073741824 },
      });
      const audit = await auditFor('tenant', tenant.id);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'tenant.create', before: null, after: { email: 'ops@acme.example' }, actor: expect.stringMatching(/^admin:/) });
    });

    it('creates on a named plan; an unknown plan is a validation error', async () => {
      expect((await createTenant('pro@x.example', { plan: 'pro' })).plan).toBe('pro');
      const res = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: 'X', email: 'np@x.example', plan: 'platinum' } });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: 'validation_failed', details: [expect.stringMatching(/platinum/)] });
    });

    it('refuses a duplicate email, case-insensitively, with 409 conflict', async () => {
      await createTenant('dup@x.example');
      const res = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: 'Again', email: 'DUP@x.example' } });
      expect(res.status).toBe(409);
      expect((await res.json()).error.code).toBe('conflict');
    });

    it('validates the body: missing fields, bad email, unknown fields', async () => {
      const res = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { email: 'not-an-email', bogus: true } });
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.code).toBe('validation_failed');
      expect(error.details).toEqual(expect.arrayContaining([expect.stringMatching(/name/), expect.stringMatching(/email/), expect.stringMatching(/bogus/)]));
    });

    it('answers 404 not_found for unknown and malformed ids on every route', async () => {
      const unknown = '00000000-0000-4000-8000-000000000000';
      for (const [method, path, body] of [
        ['GET', `/admin/v1/tenants/${unknown}`],
        ['PATCH', `/admin/v1/tenants/${unknown}`, { name: 'x' }],
        ['POST', `/admin/v1/tenants/${unknown}/suspend`],
        ['DELETE', `/admin/v1/tenants/${unknown}`],
        ['GET', `/admin/v1/tenants/${unknown}/keys`],
        ['POST', `/admin/v1/tenants/${unknown}/keys`, {}],
        ['GET', `/admin/v1/tenants/${unknown}/ip-allowlist`],
        ['PUT', `/admin/v1/tenants/${unknown}/ip-allowlist`, { entries: [] }],
        ['GET', '/admin/v1/tenants/12345'],
      ] as Array<[string, string, unknown?]>) {
        const res = await gw.admin(path, { method, json: body });
        expect([method, path, res.status]).toEqual([method, path, 404]);
        expect((await res.json()).error.code).toBe('not_found');
      }
    });

    it('lists with pagination, search and filters', async () => {
      for (const n of [1, 2, 3]) await createTenant(`list${n}@paging.example`);
      const page1 = await json(await gw.admin('/admin/v1/tenants?search=PAGING&limit=2'));
      expect(page1).toMatchObject({ total: 3, limit: 2, offset: 0 });
      expect(page1.items.map((t: { email: string }) => t.email)).toEqual(['list1@paging.example', 'list2@paging.example']);
      const page2 = await json(await gw.admin('/admin/v1/tenants?search=paging&limit=2&offset=2'));
      expect(page2.items.map((t: { email: string }) => t.email)).toEqual(['list3@paging.example']);
      const pro = await json(await gw.admin('/admin/v1/tenants?plan=pro'));
      expect(pro.items.every((t: { plan: string }) => t.plan === 'pro')).toBe(true);
      expect(pro.total).toBeGreaterThan(0);
      // LIKE wildcards in the search are literal.
      expect((await json(await gw.admin('/admin/v1/tenants?search=%25'))).total).toBe(0);
      expect((await gw.admin('/admin/v1/tenants?limit=0')).status).toBe(400);
    });

    it('PATCHes status, plan, sources and overrides; null clears an override; audited with before and after', async () => {
      const tenant = await createTenant('patch@x.example');
      const res = await gw.admin(`/admin/v1/tenants/${tenant.id}`, {
        method: 'PATCH',
        json: {
          plan: 'pro',
          allowedSources: ['https://cdn.acme.example/', 'https://cdn.acme.example/'],
          allowUnsignedUrls: true,
          rateLimits: { perMinute: 300 },
          quotas: { monthlyRequests: 250000, storageBytes: 2048 },
        },
      });
      expect(res.status).toBe(200);
      const patched = await res.json();
      expect(patched).toMatchObject({
        plan: 'pro',
        allowedSources: ['https://cdn.acme.example/'],
        allowUnsignedUrls: true,
        rateLimits: { perMinute: 300 },
        quotas: { monthlyRequests: 250000, storageBytes: 2048 },
        limits: { perMinute: 300, perHour: 100000, burst: 800, monthlyRequests: 250000, dailyRequests: 200000, storageBytes: 2048 },
      });

      const cleared = await json(
        await gw.admin(`/admin/v1/tenants/${tenant.id}`, { method: 'PATCH', json: { rateLimits: { perMinute: null, perHour: 50 }, quotas: null } }),
      );
      expect(cleared.rateLimits).toEqual({ perHour: 50 });
      expect(cleared.quotas).toEqual({});
      expect(cleared.limits).toMatchObject({ perMinute: 5000, perHour: 50, monthlyRequests: 5000000 });

      const suspended = await json(await gw.admin(`/admin/v1/tenants/${tenant.id}`, { method: 'PATCH', json: { status: 'suspended' } }));
      expect(suspended.status).toBe('suspended');

      const audit = await auditFor('tenant', tenant.id);
      expect(audit.map((a) => a.action)).toEqual(['tenant.update', 'tenant.update', 'tenant.update', 'tenant.create']);
      expect(audit[2]).toMatchObject({ before: { plan: 'free', rateLimits: {} }, after: { plan: 'pro', rateLimits: { perMinute: 300 } } });
    });

    it('refuses bad PATCH values with details', async () => {
      const tenant = await createTenant('badpatch@x.example');
      const res = await gw.admin(`/admin/v1/tenants/${tenant.id}`, {
        method: 'PATCH',
        json: { status: 'deleted', rateLimits: { perMinute: 0, perDay: 5 }, quotas: { storageBytes: 'lots' }, allowedSources: ['cdn.example.com'] },
      });
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.details).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/status/),
          expect.stringMatching(/perMinute/),
          expect.stringMatching(/perDay/),
          expect.stringMatching(/storageBytes/),
          expect.stringMatching(/allowedSources/),
        ]),
      );
      expect((await json(await gw.admin(`/admin/v1/tenants/${tenant.id}`))).status).toBe('active');
    });

    it('refuses allowed sources the sandbox could never match (userinfo, no scheme, bad host)', async () => {
      const tenant = await createTenant('badsources@x.example');
      for (const entry of ['http://user@evil.example/', 'local://x', 'https://exa mple.com/']) {
        const res = await gw.admin(`/admin/v1/tenants/${tenant.id}`, { method: 'PATCH', json: { allowedSources: ['https://cdn.ok.example/', entry] } });
        expect(res.status).toBe(400);
        expect((await res.json()).error.details).toEqual([expect.stringContaining(entry)]);
      }
      expect((await json(await gw.admin(`/admin/v1/tenants/${tenant.id}`))).allowedSources).toEqual([]);
    });

    it('a PATCH to an email another tenant has is 409', async () => {
      await createTenant('taken@x.example');
      const other = await createTenant('free@x.example');
      const res = await gw.admin(`/admin/v1/tenants/${other.id}`, { method: 'PATCH', json: { email: 'Taken@x.example' } });
      expect(res.status).toBe(409);
    });

    it('suspends and reactivates, audited', async () => {
      const tenant = await createTenant('susp@x.example');
      const s = await gw.admin(`/admin/v1/tenants/${tenant.id}/suspend`, { method: 'POST' });
      expect(s.status).toBe(200);
      expect((await s.json()).status).toBe('suspended');
      const r = await gw.admin(`/admin/v1/tenants/${tenant.id}/reactivate`, { method: 'POST' });
      expect((await r.json()).status).toBe('active');
      expect((await auditFor('tenant', tenant.id)).map((a) => a.action)).toEqual(['tenant.reactivate', 'tenant.suspend', 'tenant.create']);
    });

    it('deletes a tenant with its keys, allowlist and request logs, audited', async () => {
      const tenant = await createTenant('gone@x.example');
      const keep = await createTenant('stays@x.example');
      const key = await json(await gw.admin(`/admin/v1/tenants/${tenant.id}/keys`, { method: 'POST', json: {} }));
      await gw.admin(`/admin/v1/tenants/${tenant.id}/ip-allowlist`, { method: 'PUT', json: { entries: [{ cidr: '10.0.0.0/8' }] } });
      for (const id of [tenant.id, keep.id]) {
        await db.query(`INSERT INTO request_logs (request_id, tenant_id, method, path, status, duration_ms) VALUES ('r', $1, 'GET', '/i/x', 200, 1)`, [id]);
      }

      const res = await gw.admin(`/admin/v1/tenants/${tenant.id}`, { method: 'DELETE' });
      expect(res.status).toBe(204);
      expect((await gw.admin(`/admin/v1/tenants/${tenant.id}`)).status).toBe(404);
      const count = async (sql: string, id: string) => Number((await db.query(sql, [id])).rows[0].n);
      expect(await count('SELECT count(*) AS n FROM api_keys WHERE key_id = $1', key.keyId)).toBe(0);
      expect(await count('SELECT count(*) AS n FROM ip_allowlist WHERE tenant_id = $1', tenant.id)).toBe(0);
      expect(await count('SELECT count(*) AS n FROM request_logs WHERE tenant_id = $1', tenant.id)).toBe(0);
      expect(await count('SELECT count(*) AS n FROM request_logs WHERE tenant_id = $1', keep.id)).toBe(1);
      expect((await auditFor('tenant', tenant.id))[0]).toMatchObject({ action: 'tenant.delete', before: { email: 'gone@x.example' }, after: null });
    });
  });

  describe('keys', () => {
    let tenantId: string;
    beforeAll(async () => {
      tenantId = (await createTenant('keys@x.example')).id;
    });

    it('shows the key, signing key and salt once; stores only the HMAC and ciphertext', async () => {
      const res = await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: { name: 'web', scopes: ['images:read', 'images:write'] } });
      expect(res.status).toBe(201);
      // The only response that ever holds the secrets must not be kept by any cache.
      expect(res.headers.get('cache-control')).toBe('no-store');
      const created = await res.json();
      expect(created).toMatchObject({
        tenantId,
        keyId: expect.stringMatching(/^[0-9A-Za-z]{12}$/),
        key: expect.stringMatching(/^igw_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}$/),
        signingKey: expect.stringMatching(/^[0-9a-f]{64}$/),
        signingSalt: expect.stringMatching(/^[0-9a-f]{64}$/),
        scopes: ['images:read', 'images:write'],
        name: 'web',
        expiresAt: null,
      });
      expect(created.key.startsWith(`igw_${created.keyId}_`)).toBe(true);
      const secret = created.key.split('_')[2];

      const list = await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys`));
      const listed = list.items.find((k: { keyId: string }) => k.keyId === created.keyId);
      expect(listed).toMatchObject({ maskedKey: `igw_${created.keyId}_********`, status: 'active', scopes: ['images:read', 'images:write'] });
      const one = await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${created.keyId}`));
      for (const text of [JSON.stringify(list), JSON.stringify(one)]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(created.signingKey);
        expect(text).not.toContain(created.signingSalt);
      }

      const { rows } = await db.query('SELECT secret_hash, signing_key_enc, signing_salt_enc FROM api_keys WHERE key_id = $1', [created.keyId]);
      const row = rows[0] as { secret_hash: Buffer; signing_key_enc: Buffer; signing_salt_enc: Buffer };
      const { createHmac } = await import('node:crypto');
      expect(row.secret_hash.equals(createHmac('sha256', gw.config.security.keyPepper!).update(secret).digest())).toBe(true);
      const signingKey = Buffer.from(created.signingKey, 'hex');
      expect(row.signing_key_enc.length).toBe(12 + 16 + 32);
      expect(row.signing_key_enc.includes(signingKey)).toBe(false);
      expect(row.signing_salt_enc.includes(Buffer.from(created.signingSalt, 'hex'))).toBe(false);
      const whole = JSON.stringify((await db.query('SELECT * FROM api_keys WHERE key_id = $1', [created.keyId])).rows[0]);
      expect(whole).not.toContain(secret);
      expect(whole).not.toContain(created.signingKey);

      const audit = await auditFor('api_key', created.keyId);
      expect(audit[0]).toMatchObject({ action: 'api_key.create', after: { keyId: created.keyId, scopes: ['images:read', 'images:write'] } });
      expect(JSON.stringify(audit)).not.toContain(secret);
      expect(JSON.stringify(audit)).not.toContain(created.signingKey);
    });

    it('defaults the scopes to images:read, images:write and usage:read', async () => {
      const created = await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: {} }));
      expect(created.scopes).toEqual(['images:read', 'images:write', 'usage:read']);
    });

    it('validates scopes and expiry', async () => {
      const res = await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: { scopes: ['admin'], expiresAt: 'soon' } });
      expect(res.status).toBe(400);
      expect((await res.json()).error.details).toEqual(expect.arrayContaining([expect.stringMatching(/scopes/), expect.stringMatching(/expiresAt/)]));
      const past = await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: { expiresAt: '2020-01-01T00:00:00Z' } });
      expect(past.status).toBe(400);
      expect((await past.json()).error.details).toEqual(['expiresAt must be in the future']);
    });

    it('revokes (idempotently, audited once) and 404s unknown keys', async () => {
      const created = await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: {} }));
      expect((await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${created.keyId}`, { method: 'DELETE' })).status).toBe(204);
      expect((await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${created.keyId}`, { method: 'DELETE' })).status).toBe(204);
      const listed = await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${created.keyId}`));
      expect(listed).toMatchObject({ status: 'revoked', revokedAt: expect.any(String) });
      expect((await auditFor('api_key', created.keyId)).map((a) => a.action)).toEqual(['api_key.revoke', 'api_key.create']);

      expect((await gw.admin(`/admin/v1/tenants/${tenantId}/keys/AAAAAAAAAAAA`, { method: 'DELETE' })).status).toBe(404);
      expect((await gw.admin(`/admin/v1/tenants/${tenantId}/keys/bad`, { method: 'DELETE' })).status).toBe(404);
      // Another tenant's key is not found under this tenant.
      const other = await createTenant('otherkeys@x.example');
      expect((await gw.admin(`/admin/v1/tenants/${other.id}/keys/${created.keyId}`, { method: 'DELETE' })).status).toBe(404);
    });

    it('rotates: a new key with the same scopes, the old one expiring after the grace period', async () => {
      const old = await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: { name: 'rot', scopes: ['usage:read'] } }));
      const before = Date.now();
      const res = await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${old.keyId}/rotate`, { method: 'POST', json: {} });
      expect(res.status).toBe(201);
      const rotated = await res.json();
      expect(rotated).toMatchObject({ name: 'rot', scopes: ['usage:read'], key: expect.stringMatching(/^igw_/), previous: { keyId: old.keyId } });
      expect(rotated.keyId).not.toBe(old.keyId);
      const deadline = new Date(rotated.previous.expiresAt).getTime();
      expect(deadline).toBeGreaterThanOrEqual(before + 86_400_000 - 1000);
      expect(deadline).toBeLessThanOrEqual(Date.now() + 86_400_000 + 1000);
      expect((await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${old.keyId}`))).status).toBe('active');

      const custom = await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${rotated.keyId}/rotate`, { method: 'POST', json: { gracePeriodSeconds: 0 } }));
      expect((await json(await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${rotated.keyId}`))).status).toBe('expired');
      expect(custom.previous.keyId).toBe(rotated.keyId);
      expect((await auditFor('api_key', old.keyId))[0]).toMatchObject({ action: 'api_key.rotate', after: { replacedBy: rotated.keyId } });

      await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${custom.keyId}`, { method: 'DELETE' });
      const revoked = await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${custom.keyId}/rotate`, { method: 'POST', json: {} });
      expect(revoked.status).toBe(409);
      expect((await gw.admin(`/admin/v1/tenants/${tenantId}/keys/${old.keyId}/rotate`, { method: 'POST', json: { gracePeriodSeconds: -1 } })).status).toBe(400);
    });
  });

  describe('IP allowlist', () => {
    it('replaces and reads the list in canonical form, audited', async () => {
      const tenant = await createTenant('allow@x.example');
      const res = await gw.admin(`/admin/v1/tenants/${tenant.id}/ip-allowlist`, {
        method: 'PUT',
        json: {
          entries: [
            { cidr: '203.0.113.7/24', description: 'office' },
            { cidr: '203.0.113.0/24', description: 'duplicate' },
            { cidr: '::ffff:198.51.100.9' },
            { cidr: '2001:DB8::/32' },
          ],
        },
      });
      expect(res.status).toBe(200);
      const expected = [
        { cidr: '203.0.113.0/24', description: 'office' },
        { cidr: '198.51.100.9/32', description: null },
        { cidr: '2001:db8::/32', description: null },
      ];
      const put = await res.json();
      expect(put.entries.map(({ cidr, description }: { cidr: string; description: string | null }) => ({ cidr, description }))).toEqual(
        expect.arrayContaining(expected),
      );
      expect(put.entries).toHaveLength(3);
      const get = await json(await gw.admin(`/admin/v1/tenants/${tenant.id}/ip-allowlist`));
      expect(get.entries).toHaveLength(3);

      const empty = await json(await gw.admin(`/admin/v1/tenants/${tenant.id}/ip-allowlist`, { method: 'PUT', json: { entries: [] } }));
      expect(empty.entries).toEqual([]);
      const audit = await auditFor('ip_allowlist', tenant.id);
      expect(audit.map((a) => a.action)).toEqual(['ip_allowlist.replace', 'ip_allowlist.replace']);
      expect((audit[0].before as unknown[]).length).toBe(3);
      expect(audit[0].after).toEqual([]);
    });

    it('refuses invalid CIDRs with 400 and details naming the entry', async () => {
      const tenant = await createTenant('badcidr@x.example');
      const res = await gw.admin(`/admin/v1/tenants/${tenant.id}/ip-allowlist`, {
        method: 'PUT',
        json: { entries: [{ cidr: '10.0.0.0/8' }, { cidr: '10.0.0.0/33' }, { cidr: 'example.com' }, { cidr: '010.0.0.1' }, { cidr: '10.1/8' }] },
      });
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.code).toBe('validation_failed');
      expect(error.details).toEqual(
        expect.arrayContaining([1, 2, 3, 4].map((i) => expect.stringMatching(new RegExp(`entries\\.${i}\\.cidr`)))),
      );
      expect((await json(await gw.admin(`/admin/v1/tenants/${tenant.id}/ip-allowlist`))).entries).toEqual([]);
      expect((await gw.admin(`/admin/v1/tenants/${tenant.id}/ip-allowlist`, { method: 'PUT', json: {} })).status).toBe(400);
    });
  });

  it('documents the admin and tenant endpoints in Swagger', async () => {
    const doc = await (await gw.fetch('/docs-json')).json();
    for (const path of [
      '/admin/v1/tenants',
      '/admin/v1/tenants/{id}',
      '/admin/v1/tenants/{id}/suspend',
      '/admin/v1/tenants/{id}/keys',
      '/admin/v1/tenants/{id}/keys/{keyId}',
      '/admin/v1/tenants/{id}/keys/{keyId}/rotate',
      '/admin/v1/tenants/{id}/ip-allowlist',
      '/admin/v1/plans',
      '/api/v1/me',
    ]) {
      expect(doc.paths[path]).toBeDefined();
    }
    expect(doc.paths['/api/v1/me'].get.security).toEqual([{ apiKey: [] }]);
    expect(doc.paths['/admin/v1/tenants'].post.responses['409']).toBeDefined();
    expect(doc.components.schemas.TenantUpdateDto.properties).toHaveProperty('rateLimits');
  });
});
