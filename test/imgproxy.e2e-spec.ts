import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateImageUrl } from '@imgproxy/imgproxy-node';
import sharp from 'sharp';
import { startImgproxyWorker, type ImgproxyWorker } from '../src/dev/imgproxy-worker/imgproxy-worker.server';
import { ImgproxySigner } from '../src/signing/imgproxy-signature';
import { decodeImgproxySource, parseImgproxyPath } from '../src/signing/imgproxy-url';
import { rawRequest } from './support/http-backends';
import { TestApp, createTestApp } from './support/test-app';

/**
 * Signed tenant URLs end to end (docs/tenants-and-keys.md, docs/imgproxy.md): URLs made by the official builder, through the
 * whole pipeline, to the imgproxy-compatible worker, which only answers URLs signed with the
 * pool's key and carrying the pool's secret.
 */
const POOL_KEY = randomBytes(32).toString('hex');
const POOL_SALT = randomBytes(32).toString('hex');
const POOL_SECRET = 'imgproxy-backend-secret';

interface Tenant {
  id: string;
  keyId: string;
  key: string;
  signingKey: string;
  signingSalt: string;
}

describe('signed image URLs /t/* (real PostgreSQL, Redis and imgproxy worker)', () => {
  let root: string;
  let worker: ImgproxyWorker;
  let gw: TestApp;
  let a: Tenant;
  let b: Tenant;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'igw-imgproxy-e2e-'));
    worker = await startImgproxyWorker({ keyHex: POOL_KEY, saltHex: POOL_SALT, secret: POOL_SECRET, root });
    gw = await createTestApp({
      config: {
        imgproxy: { key: POOL_KEY, salt: POOL_SALT, secret: POOL_SECRET, allowedSources: ['https://cdn.example.com/'] },
        uploads: { root },
        backends: [{ name: 'worker', url: worker.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
        rateLimit: { ip: { perMinute: 1_000_000 } },
      },
    });
    a = await createTenant('a@imgproxy.example');
    b = await createTenant('b@imgproxy.example');
    // Tenant A's own image, where imgproxy will look for A's `local:///cat.png`.
    mkdirSync(join(root, 'tenants', a.id), { recursive: true });
    await sharp({ create: { width: 400, height: 300, channels: 3, background: '#2080c0' } })
      .png()
      .toFile(join(root, 'tenants', a.id, 'cat.png'));
  });
  afterAll(async () => {
    await gw?.close();
    await worker?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function createTenant(email: string): Promise<Tenant> {
    const tenant = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: email, email } });
    expect(tenant.status).toBe(201);
    const id = (await tenant.json()).id as string;
    const key = await gw.admin(`/admin/v1/tenants/${id}/keys`, { method: 'POST', json: { scopes: ['images:read'] } });
    expect(key.status).toBe(201);
    return { id, ...(await key.json()) };
  }

  /** The request target of a builder URL, exactly as a browser would send it. */
  function built(tenant: Tenant, url: Parameters<typeof generateImageUrl>[0]['url'], options: Parameters<typeof generateImageUrl>[0]['options'] = { width: 100 }): string {
    const full = generateImageUrl({ endpoint: `${gw.url}/t/${tenant.keyId}`, url, options, key: tenant.signingKey, salt: tenant.signingSalt });
    return full.slice(gw.url.length);
  }

  /** A signed-mode path signed by hand, for sources no builder would produce. */
  function signedByHand(tenant: Tenant, path: string): string {
    return `/t/${tenant.keyId}${new ImgproxySigner(tenant.signingKey, tenant.signingSalt).signPath(path)}`;
  }

  function lastUpstream() {
    const request = worker.requests.filter((r) => r.path !== '/health').at(-1);
    if (!request) throw new Error('the worker received nothing');
    const parsed = parseImgproxyPath(request.path);
    return { request, parsed, source: decodeImgproxySource(parsed.source).url };
  }

  it('serves a URL made by the official Node builder, re-signed for the pool and sandboxed to the tenant', async () => {
    const target = built(a, 'local:///cat.png', { resize: { resizing_type: 'fit', width: 80, height: 80 }, format: 'webp' });
    const res = await gw.fetch(target);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    const image = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect({ format: image.format, width: image.width, height: image.height }).toEqual({ format: 'webp', width: 80, height: 60 });

    const { request, parsed, source } = lastUpstream();
    expect(source).toBe(`local:///tenants/${a.id}/cat.png`);
    expect(new ImgproxySigner(POOL_KEY, POOL_SALT).verify(parsed.signature, parsed.signedPath)).toBe(true);
    expect(request.headers.authorization).toBe(`Bearer ${POOL_SECRET}`);
    // The tenant's signature never travels upstream.
    expect(request.path).not.toContain(target.split('/')[3]);
  });

  it('serves plain sources with @extension too', async () => {
    const res = await gw.fetch(built(a, { value: 'local:///cat.png@png', displayAs: 'plain' }, { height: 30 }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(lastUpstream().source).toBe(`local:///tenants/${a.id}/cat.png`);
  });

  it('refuses a tampered URL with 401 and sends nothing upstream', async () => {
    const before = worker.requests.length;
    const target = built(a, 'local:///cat.png', { width: 100 });
    for (const tampered of [target.replace('w:100', 'w:101'), target.replace(/\/t\/\w+\/./, (m) => m.slice(0, -1) + (m.endsWith('A') ? 'B' : 'A'))]) {
      const res = await gw.fetch(tampered);
      expect(res.status).toBe(401);
      expect((await res.json()).error.code).toBe('unauthorized');
    }
    expect(worker.requests.length).toBe(before);
    const metrics = await (await gw.fetch('/metrics')).text();
    expect(metrics).toMatch(/gateway_auth_failures_total\{reason="bad_signature"\} [1-9]/);
  });

  it("refuses another tenant's signing key and an unknown key id with 401", async () => {
    const withOtherKey = generateImageUrl({
      endpoint: `${gw.url}/t/${a.keyId}`,
      url: 'local:///cat.png',
      options: { width: 10 },
      key: b.signingKey,
      salt: b.signingSalt,
    }).slice(gw.url.length);
    expect((await gw.fetch(withOtherKey)).status).toBe(401);
    const unknown = built(a, 'local:///cat.png').replace(`/t/${a.keyId}/`, '/t/Zz9Zz9Zz9Zz9/');
    expect((await gw.fetch(unknown)).status).toBe(401);
  });

  it("keeps each tenant in its own folder: B's local:///cat.png is not A's", async () => {
    const res = await gw.fetch(built(b, 'local:///cat.png'));
    // The worker finds nothing in B's folder; the gateway passes imgproxy's 404 through.
    expect(res.status).toBe(404);
    expect(lastUpstream().source).toBe(`local:///tenants/${b.id}/cat.png`);
  });

  it.each([
    ['a .. segment', '/w:10/plain/local:///../A/cat.png'],
    ['a percent-encoded ..', '/w:10/plain/local:///%2e%2e/A/cat.png'],
    ['encoded slashes around ..', '/w:10/plain/local:///x%2F..%2F..%2FA%2Fcat.png'],
    ['an absolute path', '/w:10/plain/local:////etc/passwd'],
    ['a base64 source with ..', `/w:10/${Buffer.from('local:///../A/cat.png').toString('base64url')}`],
    ['a user-info host trick', `/w:10/${Buffer.from('https://cdn.example.com@evil.example/a.jpg').toString('base64url')}`],
    ['a percent-encoded user-info trick', '/w:10/plain/https://cdn.example.com%40evil.example/a.jpg'],
    ['a look-alike host', '/w:10/plain/https://cdn.example.com.evil.example/a.jpg'],
    ['a host not on the list', '/w:10/plain/https://evil.example/a.jpg'],
    ['a loopback address', '/w:10/plain/http://127.0.0.1/a.jpg'],
    ['a metadata address', '/w:10/plain/http://169.254.169.254/latest/meta-data'],
    ['a scheme that is not allowed', '/w:10/plain/file:///etc/passwd'],
  ])('refuses %s with 400 bad_source, even when correctly signed', async (_name, path) => {
    const before = worker.requests.length;
    const res = await rawRequest(gw.url, signedByHand(b, path.replace('/A/', `/${a.id}/`)));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).error.code).toBe('bad_source');
    expect(worker.requests.length).toBe(before);
  });

  it('refuses limit-raising options and info URLs with 400 bad_url', async () => {
    const raising = await rawRequest(gw.url, signedByHand(a, '/max_src_resolution:500/plain/local:///cat.png'));
    expect(raising.status).toBe(400);
    expect(JSON.parse(raising.body.toString()).error.code).toBe('bad_url');
    const info = await rawRequest(gw.url, `/t/${a.keyId}/info/plain/local:///cat.png`);
    expect(info.status).toBe(400);
  });

  it('accepts an allowed remote source and passes it upstream unchanged', async () => {
    await gw.fetch(built(a, 'https://cdn.example.com/photos/a.jpg'));
    // The worker serves local sources only; what matters here is what it was asked for.
    expect(lastUpstream().source).toBe('https://cdn.example.com/photos/a.jpg');
  });

  it('refuses insecure unless the tenant allows unsigned URLs', async () => {
    const target = `/t/${a.keyId}/insecure/w:20/plain/local:///cat.png`;
    expect((await gw.fetch(target)).status).toBe(401);
    const patched = await gw.admin(`/admin/v1/tenants/${a.id}`, { method: 'PATCH', json: { allowUnsignedUrls: true } });
    expect(patched.status).toBe(200);
    const started = Date.now();
    let status = 0;
    // Admin changes reach the key cache through invalidation (within 2 s, docs/tenants-and-keys.md).
    while ((status = (await gw.fetch(target)).status) !== 200 && Date.now() - started < 2_000) await new Promise((r) => setTimeout(r, 25));
    expect(status).toBe(200);
    await gw.admin(`/admin/v1/tenants/${a.id}`, { method: 'PATCH', json: { allowUnsignedUrls: false } });
  });

  it('answers 403 for a key without images:read', async () => {
    const key = await gw.admin(`/admin/v1/tenants/${a.id}/keys`, { method: 'POST', json: { scopes: ['usage:read'] } });
    const writeOnly: Tenant = { id: a.id, ...(await key.json()) };
    const res = await gw.fetch(built(writeOnly, 'local:///cat.png'));
    expect(res.status).toBe(403);
  });

  it('only answers GET and HEAD', async () => {
    const head = await gw.fetch(built(a, 'local:///cat.png'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('image/png');
    const post = await gw.fetch(built(a, 'local:///cat.png'), { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await post.json()).error.code).toBe('method_not_allowed');
  });
});
