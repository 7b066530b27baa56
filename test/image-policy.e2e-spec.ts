import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateImageUrl } from '@imgproxy/imgproxy-node';
import { ImgproxySigner } from '../src/signing/imgproxy-signature';
import { decodeImgproxySource, parseImgproxyPath } from '../src/signing/imgproxy-url';
import { TestBackend, rawRequest, startBackend, waitFor, type RawResponse } from './support/http-backends';
import { freePort, spawnGateway } from './support/gateway-process';
import { TestApp, createTestApp, createTestDatabase } from './support/test-app';
import { TEST_REDIS_URL, databaseUrl, redisRunPrefix } from './support/test-env';
import { HIGH_RATE_LIMIT_CONFIG, UNLIMITED, createTenantWithKey, keyHeaders, type TenantWithKey } from './support/tenants';

jest.setTimeout(60_000);

/**
 * The per-tenant image policy and the option checks end to end (docs/imgproxy.md): real
 * PostgreSQL and Redis, URLs made by the official Node builder, and a recording backend that
 * shows exactly what the gateway sends upstream (no pool key, so upstream URLs are `insecure`).
 */
type BuilderOptions = Parameters<typeof generateImageUrl>[0]['options'];

const ONE_PIXEL_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');

function imageBackend(name: string): Promise<TestBackend> {
  return startBackend({
    name,
    handler: (_req, res) => {
      res.setHeader('content-type', 'image/png');
      res.end(ONE_PIXEL_PNG);
    },
  });
}

function gatewayConfig(backend: TestBackend, imgproxy: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...HIGH_RATE_LIMIT_CONFIG,
    imgproxy: { allowedSources: ['https://cdn.example.com/'], ...imgproxy },
    backends: [{ name: backend.name, url: backend.url, weight: 1 }],
    healthCheck: { intervalSeconds: 3600 },
  };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('image policy and option checks (real PostgreSQL, Redis and a recording backend)', () => {
  let backend: TestBackend;
  let gw: TestApp;

  beforeAll(async () => {
    backend = await imageBackend('policy-backend');
    gw = await createTestApp({ config: gatewayConfig(backend) });
  });
  afterAll(async () => {
    await gw?.close();
    await backend?.stop();
  });

  const tenant = (options: Parameters<typeof createTenantWithKey>[1] = {}) => createTenantWithKey(gw, { ...UNLIMITED, ...options });

  async function setPolicy(t: TenantWithKey, imagePolicy: unknown, app = gw): Promise<Record<string, unknown>> {
    const res = await app.admin(`/admin/v1/tenants/${t.tenantId}`, { method: 'PATCH', json: { imagePolicy } });
    const body = await res.json();
    expect([res.status, body]).toEqual([200, expect.anything()]);
    return body;
  }

  /** The request target of a builder URL, as a browser sends it. */
  function built(t: TenantWithKey, options: BuilderOptions, url = 'local:///cat.png', pair = { key: t.signingKey, salt: t.signingSalt }): string {
    return generateImageUrl({ endpoint: `${gw.url}/t/${t.keyId}`, url, options, ...pair }).slice(gw.url.length);
  }

  /** A signed-mode path signed by hand, for options no builder writes. */
  function signedByHand(t: TenantWithKey, path: string): string {
    return `/t/${t.keyId}${new ImgproxySigner(t.signingKey, t.signingSalt).signPath(path)}`;
  }

  function lastUpstream() {
    const request = backend.imageRequests.at(-1);
    if (!request) throw new Error('the backend received nothing');
    const parsed = parseImgproxyPath(request.url);
    return { optionsPath: parsed.optionsPath, source: decodeImgproxySource(parsed.source).url };
  }

  async function refused(target: string, init: { headers?: Record<string, string> } = {}): Promise<{ status: number; code: string; message: string }> {
    const before = backend.hits;
    const res = await rawRequest(gw.url, target, init);
    expect(backend.hits).toBe(before);
    const { error } = JSON.parse(res.body.toString());
    return { status: res.status, code: error.code, message: error.message };
  }

  describe('processing options imgproxy would refuse', () => {
    let t: TenantWithKey;
    beforeAll(async () => {
      t = await tenant();
    });

    it.each([
      ['an unknown name', '/foo:1', 'Unknown processing option: foo'],
      ['a mis-cased name', '/W:100', 'Unknown processing option: W'],
      ['a bad format name', '/f:PNG', 'Invalid image format: PNG'],
      ['a non-numeric quality', '/q:abc', 'Invalid quality: abc'],
      ['a quality over 100', '/q:101', 'Invalid quality: 101'],
      ['an unknown resizing type', '/rs:crop:100:100', 'Invalid resize type: crop'],
      ['a rotation that is not a multiple of 90', '/rot:45', 'Invalid rotation angle: 45'],
      ['an option of imgproxy 4 on a version 3 backend', '/fl:1', 'Unknown processing option: fl'],
      ['the builder spelling of skip_processing', '/sp:jpg', 'Unknown processing option: sp'],
      ['too many arguments', '/w:10:20', 'Invalid width arguments: 10:20'],
    ])('answers %s with 400 bad_url itself, without calling the backend', async (_name, options, message) => {
      const answer = await refused(signedByHand(t, `${options}/plain/local:///cat.png`));
      expect(answer).toEqual({ status: 400, code: 'bad_url', message: expect.stringContaining(message) });
    });

    it('checks header-mode URLs the same way', async () => {
      expect(await refused('/i/insecure/q:abc/plain/local:///cat.png', { headers: keyHeaders(t) })).toMatchObject({ status: 400, code: 'bad_url' });
    });

    it('passes what imgproxy accepts byte for byte', async () => {
      const options = '/rs:fill-down:300:200:1:0/g:fp:0.5:0.25/bl:1.5/q:0/f:webp/cb:v2/dpr:2';
      const res = await rawRequest(gw.url, signedByHand(t, `${options}/plain/local:///cat.png`));
      expect(res.status).toBe(200);
      expect(lastUpstream()).toEqual({ optionsPath: options, source: `local:///tenants/${t.tenantId}/cat.png` });
    });
  });

  describe('presets', () => {
    let t: TenantWithKey;
    beforeAll(async () => {
      t = await tenant({ allowUnsignedUrls: true });
      await setPolicy(t, { presets: { thumb: 'rs:fill:120:80/q:70', sharp: 'sh:0.5' } });
    });

    it("expands the builder's preset option into the tenant's preset before re-signing", async () => {
      const res = await gw.fetch(built(t, { preset: ['thumb', 'sharp'], format: 'webp' }));
      expect(res.status).toBe(200);
      expect(lastUpstream().optionsPath).toBe('/f:webp/rs:fill:120:80/q:70/sh:0.5');
    });

    it('answers an unknown preset with 400 bad_url', async () => {
      expect(await refused(built(t, { preset: ['missing'] }))).toEqual({ status: 400, code: 'bad_url', message: 'Unknown preset: missing' });
    });

    it('refuses every other option with 403 when presets only, also for unsigned URLs', async () => {
      await setPolicy(t, { presetsOnly: true });
      expect(await refused(built(t, { width: 3000 }))).toMatchObject({ status: 403, code: 'forbidden', message: expect.stringContaining('presets only') });
      expect(await refused(`/t/${t.keyId}/insecure/w:3000/plain/local:///cat.png`)).toMatchObject({ status: 403, code: 'forbidden' });

      expect((await gw.fetch(`/t/${t.keyId}/insecure/pr:thumb/plain/local:///cat.png`)).status).toBe(200);
      expect(lastUpstream().optionsPath).toBe('/rs:fill:120:80/q:70');
      const expiring = built(t, { preset: ['thumb'], expires: nowSeconds() + 600 });
      expect((await gw.fetch(expiring)).status).toBe(200);
      await setPolicy(t, { presetsOnly: null });
    });

    it('is audited, and null clears the tenant policy back to the plan', async () => {
      const audit = await (await gw.admin(`/admin/v1/audit-log?targetType=tenant&targetId=${t.tenantId}`)).json();
      expect(audit.items[0]).toMatchObject({ action: 'tenant.update', after: { imagePolicy: { presets: { thumb: 'rs:fill:120:80/q:70' } } } });
      const other = await tenant();
      await setPolicy(other, { maxWidth: 10, defaultQuality: 50 });
      const cleared = await setPolicy(other, { maxWidth: null });
      expect(cleared).toMatchObject({ imagePolicy: { defaultQuality: 50 }, effectiveImagePolicy: { defaultQuality: 50 } });
      expect((await setPolicy(other, null)).imagePolicy).toEqual({});
    });

    it('validates presets with the option parser when they are written', async () => {
      const res = await gw.admin(`/admin/v1/tenants/${t.tenantId}`, {
        method: 'PATCH',
        json: { imagePolicy: { presets: { bad: 'q:abc', nested: 'pr:thumb', 'no space': 'w:1' } } },
      });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({
        code: 'validation_failed',
        details: expect.arrayContaining([expect.stringMatching(/presets/)]),
      });
      const again = await gw.admin(`/admin/v1/tenants/${t.tenantId}`, { method: 'PATCH', json: { imagePolicy: { presets: { bad: 'q:abc', nested: 'pr:thumb' } } } });
      expect((await again.json()).error.details).toEqual([
        'imagePolicy.presets.bad: Invalid quality: abc (processing option q)',
        'imagePolicy.presets.nested: presets cannot use other presets (pr)',
      ]);
    });
  });

  describe('limits', () => {
    let t: TenantWithKey;
    beforeAll(async () => {
      t = await tenant();
      await setPolicy(t, { maxWidth: 300, maxHeight: 200, maxSrcResolution: 2, maxSrcFileSize: 100000 });
    });

    it('writes the caps into the upstream URL, after the tenant options, so a URL cannot raise them', async () => {
      const res = await gw.fetch(built(t, { resize: { resizing_type: 'fill', width: 3000, height: 3000 } }));
      expect(res.status).toBe(200);
      expect(lastUpstream().optionsPath).toBe('/rs:fill:3000:3000/w:200/h:200/msr:2/msfs:100000/mrd:300');
    });

    it('counts dpr and fills auto dimensions, in header mode too', async () => {
      const res = await rawRequest(gw.url, '/i/insecure/w:250/dpr:2/plain/local:///cat.png', { headers: keyHeaders(t) });
      expect(res.status).toBe(200);
      expect(lastUpstream().optionsPath).toBe('/w:250/dpr:2/w:150/h:100/msr:2/msfs:100000/mrd:300');
    });

    it("refuses the tenant's own security options with 400", async () => {
      for (const option of ['msr:500', 'max_src_file_size:999999999', 'mrd:10000', 'raw:1']) {
        expect(await refused(signedByHand(t, `/${option}/plain/local:///cat.png`))).toMatchObject({ status: 400, code: 'bad_url' });
      }
    });

    it('adds the default format and quality when the URL sets none', async () => {
      const d = await tenant();
      await setPolicy(d, { defaultFormat: 'webp', defaultQuality: 70 });
      await gw.fetch(built(d, { width: 50 }));
      expect(lastUpstream().optionsPath).toBe('/w:50/f:webp/q:70');
      await gw.fetch(built(d, { width: 50, format: 'png', quality: 90 }));
      expect(lastUpstream().optionsPath).toBe('/f:png/q:90/w:50');
    });
  });

  describe('expiring URLs', () => {
    let t: TenantWithKey;
    beforeAll(async () => {
      t = await tenant();
    });

    it('serves a URL before its exp and refuses it after with 403 saying it expired', async () => {
      const valid = await gw.fetch(built(t, { width: 10, expires: nowSeconds() + 60 }));
      expect(valid.status).toBe(200);
      const expired = await refused(built(t, { width: 10, expires: nowSeconds() - 5 }));
      expect(expired).toEqual({ status: 403, code: 'forbidden', message: expect.stringMatching(/^This URL expired at \d{4}-/) });
    });

    it('requires exp when the tenant asks for it, and caps how far ahead it may be', async () => {
      await setPolicy(t, { requireExpiry: true, maxExpirySeconds: 3600 });
      expect(await refused(built(t, { width: 10 }))).toEqual({ status: 403, code: 'forbidden', message: 'This account requires expiring URLs: add exp:<unix seconds>' });
      expect(await refused(built(t, { width: 10, expires: nowSeconds() + 7200 }))).toEqual({
        status: 403,
        code: 'forbidden',
        message: 'This URL expires too far ahead: at most 3600 seconds from now',
      });
      const inRange = built(t, { width: 10, expires: nowSeconds() + 1800 });
      expect((await gw.fetch(inRange)).status).toBe(200);
      // API-key requests honour an exp they carry but need none.
      expect((await rawRequest(gw.url, '/i/insecure/w:10/plain/local:///cat.png', { headers: keyHeaders(t) })).status).toBe(200);
    });
  });

  describe('watermark', () => {
    it("adds the tenant's wm with every argument after the tenant's own, which it replaces", async () => {
      const t = await tenant();
      await setPolicy(t, { watermark: { opacity: 0.5, position: 'soea', xOffset: 5, yOffset: 6, scale: 0.25 } });
      await gw.fetch(built(t, { width: 100 }));
      expect(lastUpstream().optionsPath).toBe('/w:100/wm:0.5:soea:5:6:0.25');
      await gw.fetch(built(t, { width: 100, watermark: { opacity: 0.01, position: 'nowe' } }));
      expect(lastUpstream().optionsPath).toBe('/wm:0.01:nowe/w:100/wm:0.5:soea:5:6:0.25');
      expect(await refused(signedByHand(t, '/skp:png/plain/local:///cat.png'))).toMatchObject({ status: 403, code: 'forbidden' });
    });

    it('offers a watermark image per tenant only with imgproxy Pro', async () => {
      const t = await tenant();
      const res = await gw.admin(`/admin/v1/tenants/${t.tenantId}`, {
        method: 'PATCH',
        json: { imagePolicy: { watermark: { opacity: 1, uploadId: '8b9f0c59-4a43-4f6c-9d34-5b0a8f6d2e11' } } },
      });
      expect(res.status).toBe(400);
      expect((await res.json()).error.details).toEqual([expect.stringMatching(/^imagePolicy.watermark.uploadId: .*needs imgproxy Pro/)]);
    });
  });

  describe('signing-key rotation', () => {
    it('verifies the old and the new pair until the previous one is dropped, then only the new', async () => {
      const t = await tenant();
      const oldPair = { key: t.signingKey, salt: t.signingSalt };
      expect((await gw.fetch(built(t, { width: 20 }, 'local:///cat.png', oldPair))).status).toBe(200);

      const rotated = await gw.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}/rotate-signing`, { method: 'POST' });
      expect(rotated.status).toBe(201);
      const body = await rotated.json();
      expect(body).toEqual({
        keyId: t.keyId,
        signingKey: expect.stringMatching(/^[0-9a-f]{64}$/),
        signingSalt: expect.stringMatching(/^[0-9a-f]{64}$/),
        signingRotatedAt: expect.any(String),
        previousSigningValid: true,
      });
      const newPair = { key: body.signingKey, salt: body.signingSalt };
      expect((await gw.fetch(built(t, { width: 21 }, 'local:///cat.png', oldPair))).status).toBe(200);
      expect((await gw.fetch(built(t, { width: 22 }, 'local:///cat.png', newPair))).status).toBe(200);
      const listed = await (await gw.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}`)).json();
      expect(listed).toMatchObject({ previousSigningValid: true, signingRotatedAt: body.signingRotatedAt });

      expect((await gw.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}/signing/previous`, { method: 'DELETE' })).status).toBe(204);
      expect((await gw.fetch(built(t, { width: 23 }, 'local:///cat.png', oldPair))).status).toBe(401);
      expect((await gw.fetch(built(t, { width: 24 }, 'local:///cat.png', newPair))).status).toBe(200);
      expect((await gw.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}/signing/previous`, { method: 'DELETE' })).status).toBe(204);

      const audit = await (await gw.admin(`/admin/v1/audit-log?targetType=api_key&targetId=${t.keyId}`)).json();
      const actions = audit.items.map((entry: { action: string }) => entry.action);
      expect(actions).toEqual(expect.arrayContaining(['api_key.rotate_signing', 'api_key.drop_previous_signing']));
      // Never the signing material itself.
      expect(JSON.stringify(audit)).not.toContain(body.signingKey);
    });

    it('refuses to rotate a revoked key and answers 404 for another tenant key', async () => {
      const t = await tenant();
      const other = await tenant();
      expect((await gw.admin(`/admin/v1/tenants/${other.tenantId}/keys/${t.keyId}/rotate-signing`, { method: 'POST' })).status).toBe(404);
      await gw.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}`, { method: 'DELETE' });
      expect((await gw.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}/rotate-signing`, { method: 'POST' })).status).toBe(409);
    });
  });

  it('documents the policy and the signing rotation in Swagger', async () => {
    const doc = await (await gw.fetch('/docs-json')).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/admin/v1/tenants/{id}/keys/{keyId}/rotate-signing', '/admin/v1/tenants/{id}/keys/{keyId}/signing/previous']),
    );
    const policy = doc.components.schemas.ImagePolicyDto.properties;
    expect(Object.keys(policy)).toEqual([
      'presets', 'presetsOnly', 'maxWidth', 'maxHeight', 'maxSrcResolution', 'maxSrcFileSize',
      'defaultFormat', 'defaultQuality', 'requireExpiry', 'maxExpirySeconds', 'watermark',
    ]);
    expect(policy.presets.example).toEqual({ thumb: 'rs:fill:200:200/q:80', hero: 'rs:fit:1600:900/f:webp' });
    expect(doc.components.schemas.TenantUpdateDto.properties.imagePolicy).toBeDefined();
  });

  describe('signed-URL refusals', () => {
    /** What a caller sees of a refusal: everything but the request id and the date. */
    function visible(res: RawResponse) {
      const headers = { ...res.headers };
      for (const name of ['x-request-id', 'date', 'connection', 'keep-alive']) delete headers[name];
      const body = JSON.parse(res.body.toString());
      delete body.error.requestId;
      return { status: res.status, headers, body };
    }

    it('answers one identical 401 for every failure until the signature verifies', async () => {
      const live = await tenant();
      const revoked = await tenant();
      const suspended = await tenant();
      const expiring = await createTenantWithKey(gw, UNLIMITED);
      const expiresAtMs = Date.now() + 3000;
      const expiringKey = await (
        await gw.admin(`/admin/v1/tenants/${expiring.tenantId}/keys`, { method: 'POST', json: { expiresAt: new Date(expiresAtMs).toISOString() } })
      ).json();
      const expired: TenantWithKey = { ...expiring, keyId: expiringKey.keyId, signingKey: expiringKey.signingKey, signingSalt: expiringKey.signingSalt };
      // Cached while still valid: an expired key is refused from the cache, not only on a miss.
      expect((await gw.fetch(built(expired, { width: 1 }))).status).toBe(200);
      await gw.admin(`/admin/v1/tenants/${revoked.tenantId}/keys/${revoked.keyId}`, { method: 'DELETE' });
      await gw.admin(`/admin/v1/tenants/${suspended.tenantId}/suspend`, { method: 'POST' });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAtMs - Date.now() + 100)));

      const badSignature = built(live, { width: 10 }).replace(/^(\/t\/\w+\/)./, (m, prefix) => prefix + (m.endsWith('A') ? 'B' : 'A'));
      const targets = {
        'unknown key id': built({ ...live, keyId: 'Zz9Zz9Zz9Zz9' }, { width: 10 }),
        'malformed key id': built({ ...live, keyId: 'short' }, { width: 10 }),
        'revoked key': built(revoked, { width: 10 }),
        'expired key': built(expired, { width: 10 }),
        'bad signature': badSignature,
        'unsigned, not allowed': `/t/${live.keyId}/insecure/w:10/plain/local:///cat.png`,
        'suspended tenant, bad signature': built(suspended, { width: 10 }, 'local:///cat.png', { key: live.signingKey, salt: live.signingSalt }),
      };
      const before = backend.hits;
      const answers = Object.fromEntries(await Promise.all(Object.entries(targets).map(async ([name, target]) => [name, visible(await rawRequest(gw.url, target))])));
      expect(backend.hits).toBe(before);
      const expected = answers['unknown key id'];
      expect(expected).toMatchObject({
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="imgproxy-gateway"' },
        body: { error: { code: 'unauthorized', message: 'A valid URL signature is required.' } },
      });
      for (const [name, answer] of Object.entries(answers)) expect([name, answer]).toEqual([name, expected]);

      // Only a valid signature learns that the tenant is suspended.
      const valid = await rawRequest(gw.url, built(suspended, { width: 10 }));
      expect(valid.status).toBe(403);
      expect(JSON.parse(valid.body.toString()).error.message).toBe('This account is suspended.');
    });
  });
});

describe('image policy on imgproxy 4 with Pro (recording backend)', () => {
  let backend: TestBackend;
  let gw: TestApp;
  let uploads: string;

  beforeAll(async () => {
    uploads = mkdtempSync(join(tmpdir(), 'igw-policy-uploads-'));
    backend = await imageBackend('pro-backend');
    gw = await createTestApp({ config: { ...gatewayConfig(backend, { version: 4, pro: true }), uploads: { root: uploads } } });
  });
  afterAll(async () => {
    await gw?.close();
    await backend?.stop();
    rmSync(uploads, { recursive: true, force: true });
  });

  it("follows the configured version's parser", async () => {
    const t = await createTenantWithKey(gw, UNLIMITED);
    const ok = await rawRequest(gw.url, '/i/insecure/fl:1:0/ph:1/br:10/plain/local:///a.png', { headers: keyHeaders(t) });
    expect(ok.status).toBe(200);
    expect(parseImgproxyPath(backend.imageRequests.at(-1)!.url).optionsPath).toBe('/fl:1:0/ph:1/br:10');
    const zero = await rawRequest(gw.url, '/i/insecure/q:0/plain/local:///a.png', { headers: keyHeaders(t) });
    expect([zero.status, JSON.parse(zero.body.toString()).error.code]).toEqual([400, 'bad_url']);
  });

  it("sends the tenant's watermark upload as watermark_url and refuses the tenant's own watermark options", async () => {
    const t = await createTenantWithKey(gw, { ...UNLIMITED, scopes: ['images:read', 'images:write'] });
    const upload = await gw.fetch('/api/v1/images', { method: 'POST', headers: { ...keyHeaders(t), 'content-type': 'image/png' }, body: ONE_PIXEL_PNG });
    expect(upload.status).toBe(201);
    const { id } = await upload.json();
    const patched = await gw.admin(`/admin/v1/tenants/${t.tenantId}`, {
      method: 'PATCH',
      json: { imagePolicy: { watermark: { opacity: 0.8, position: 'ch', uploadId: id } } },
    });
    expect(patched.status).toBe(200);

    expect((await rawRequest(gw.url, '/i/insecure/w:10/plain/local:///a.png', { headers: keyHeaders(t) })).status).toBe(200);
    const sent = parseImgproxyPath(backend.imageRequests.at(-1)!.url);
    const [wm, wmu] = sent.optionsPath.split('/').slice(-2);
    expect(wm).toBe('wm:0.8:ch:0:0:');
    expect(Buffer.from(wmu.slice('wmu:'.length), 'base64url').toString()).toBe(`local:///tenants/${t.tenantId}/${id}.png`);

    for (const option of ['wms:1:1', 'wmt:dGV4dA', 'wmr:90']) {
      const res = await rawRequest(gw.url, `/i/insecure/${option}/plain/local:///a.png`, { headers: keyHeaders(t) });
      expect([option, res.status]).toEqual([option, 403]);
    }
    const wmuRes = await rawRequest(gw.url, '/i/insecure/wmu:aHR0cHM6Ly9ldmls/plain/local:///a.png', { headers: keyHeaders(t) });
    expect(wmuRes.status).toBe(400);

    const unknownUpload = await gw.admin(`/admin/v1/tenants/${t.tenantId}`, {
      method: 'PATCH',
      json: { imagePolicy: { watermark: { opacity: 1, uploadId: '8b9f0c59-4a43-4f6c-9d34-5b0a8f6d2e11' } } },
    });
    expect((await unknownUpload.json()).error.details).toEqual([expect.stringMatching(/no upload .* for this tenant/)]);
  });
});

describe('image policy changes reach every instance (two gateways, one database and Redis)', () => {
  let backend: TestBackend;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    backend = await imageBackend('shared-backend');
    a = await createTestApp({ config: gatewayConfig(backend) });
    b = await createTestApp({ database: a.database, redisPrefix: a.redisPrefix, config: gatewayConfig(backend) });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await backend?.stop();
  });

  /** Polls `probe` on the other instance; the change must show there within 2 seconds. */
  async function within2s(what: string, probe: () => Promise<boolean>): Promise<void> {
    const started = Date.now();
    await waitFor(what, probe, 2_000, 20);
    expect(Date.now() - started).toBeLessThan(2_000);
  }

  it('applies a tenant policy, a plan policy and a dropped signing pair on the second instance within 2 s', async () => {
    const plan = await (
      await a.admin('/admin/v1/plans', {
        method: 'POST',
        json: { name: 'policy-plan', perMinute: 100000, perHour: 1000000, monthlyRequests: 1e9, monthlyBandwidthBytes: 1e15, storageBytes: 1e12, imagePolicy: { maxWidth: 800 } },
      })
    ).json();
    expect(plan.imagePolicy).toEqual({ maxWidth: 800 });
    const t = await createTenantWithKey(a, { ...UNLIMITED, plan: 'policy-plan' });
    const url = (options: BuilderOptions, pair = { key: t.signingKey, salt: t.signingSalt }) =>
      generateImageUrl({ endpoint: `${b.url}/t/${t.keyId}`, url: 'local:///cat.png', options, ...pair }).slice(b.url.length);
    const upstreamOptions = () => parseImgproxyPath(backend.imageRequests.at(-1)!.url).optionsPath;

    // B caches the key with the plan's policy.
    expect((await b.fetch(url({ width: 2000 }))).status).toBe(200);
    expect(upstreamOptions()).toBe('/w:2000/w:800/mrd:800');

    const tenantPatch = await a.admin(`/admin/v1/tenants/${t.tenantId}`, { method: 'PATCH', json: { imagePolicy: { presets: { small: 'w:50' }, presetsOnly: true } } });
    expect((await tenantPatch.json()).effectiveImagePolicy).toEqual({ presets: { small: 'w:50' }, presetsOnly: true, maxWidth: 800 });
    await within2s('presets-only on instance B', async () => (await b.fetch(url({ width: 100 }))).status === 403);

    await a.admin(`/admin/v1/plans/${plan.id}`, { method: 'PATCH', json: { imagePolicy: { maxWidth: 40 } } });
    await within2s('the new plan cap on instance B', async () => {
      const res = await b.fetch(url({ preset: ['small'] }));
      return res.status === 200 && upstreamOptions() === '/w:50/w:40/mrd:40';
    });

    const rotated = await (await a.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}/rotate-signing`, { method: 'POST' })).json();
    await within2s('the new signing pair on instance B', async () => (await b.fetch(url({ preset: ['small'] }, { key: rotated.signingKey, salt: rotated.signingSalt }))).status === 200);
    expect((await b.fetch(url({ preset: ['small'] }))).status).toBe(200);
    await a.admin(`/admin/v1/tenants/${t.tenantId}/keys/${t.keyId}/signing/previous`, { method: 'DELETE' });
    await within2s('the old pair refused on instance B', async () => (await b.fetch(url({ preset: ['small'] }))).status === 401);
  });
});

describe('image policy of config plans', () => {
  const plan = { name: 'seeded', perMinute: 100, perHour: 1000, monthlyRequests: 1000, monthlyBandwidthBytes: 1e9, storageBytes: 1e9 };

  it('seeds a plan policy from the config', async () => {
    const gw = await createTestApp({ config: { plans: [{ ...plan, imagePolicy: { maxWidth: 640, presets: { p: 'w:10' } } }] } });
    try {
      const plans = await (await gw.admin('/admin/v1/plans')).json();
      expect(plans.items.find((p: { name: string }) => p.name === 'seeded').imagePolicy).toEqual({ maxWidth: 640, presets: { p: 'w:10' } });
    } finally {
      await gw.close();
    }
  });

  it('refuses to start with a policy imgproxy would not take, naming the plan and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'igw-policy-seed-'));
    try {
      const configFile = join(dir, 'bad-plan.yaml');
      writeFileSync(configFile, `plans:\n  - ${JSON.stringify({ ...plan, imagePolicy: { presets: { p: 'q:abc' } } })}\n`);
      const gateway = spawnGateway({
        NODE_ENV: 'test',
        CONFIG_FILE: configFile,
        DATA_DIR: dir,
        PORT: String(await freePort()),
        DATABASE_URL: databaseUrl(await createTestDatabase()),
        REDIS_URL: TEST_REDIS_URL,
        REDIS_KEY_PREFIX: `${redisRunPrefix()}bad-plan:`,
        ADMIN_TOKEN: 'policy-admin-token-0123456789',
        KEY_PEPPER: 'policy-pepper-0123456789',
        SECRETS_KEY: 'ab'.repeat(32),
      });
      expect(await gateway.exited).not.toBe(0);
      expect(gateway.output()).toContain('plans[seeded].imagePolicy is invalid: presets.p: Invalid quality: abc (processing option q)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
