import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import sharp from 'sharp';
import { startImgproxyWorker, type ImgproxyWorker } from '../src/dev/imgproxy-worker/imgproxy-worker.server';
import { rawRequest } from './support/http-backends';
import { databaseUrl } from './support/test-env';
import { TestApp, createTestApp } from './support/test-app';

/**
 * Uploads end to end (docs/imgproxy.md): real multipart and raw bodies through the whole pipeline, files on
 * a real disk, rows in the real database, and the answer's signed URL served by the
 * imgproxy-compatible worker reading the same folder.
 */
const POOL_KEY = randomBytes(32).toString('hex');
const POOL_SALT = randomBytes(32).toString('hex');
const MAX_BYTES = 256 * 1024;

interface Tenant {
  id: string;
  keyId: string;
  key: string;
}

describe('uploads /api/v1/images (real PostgreSQL, Redis, disk and imgproxy worker)', () => {
  let root: string;
  let worker: ImgproxyWorker;
  let gw: TestApp;
  let db: Client;
  let a: Tenant;
  let b: Tenant;
  let png: Buffer;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'igw-uploads-e2e-'));
    worker = await startImgproxyWorker({ keyHex: POOL_KEY, saltHex: POOL_SALT, root });
    gw = await createTestApp({
      config: {
        imgproxy: { key: POOL_KEY, salt: POOL_SALT },
        uploads: { root, maxBytes: MAX_BYTES, signedUrlOptions: 'rs:fit:64:64' },
        backends: [{ name: 'worker', url: worker.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
        rateLimit: { ip: { perMinute: 1_000_000 } },
      },
    });
    db = new Client({ connectionString: databaseUrl(gw.database) });
    await db.connect();
    a = await createTenant('a@uploads.example');
    b = await createTenant('b@uploads.example');
    png = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#a03060' } }).png().toBuffer();
  });
  afterAll(async () => {
    await db?.end();
    await gw?.close();
    await worker?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function createTenant(email: string, scopes = ['images:read', 'images:write', 'usage:read']): Promise<Tenant> {
    const tenant = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: email, email } });
    expect(tenant.status).toBe(201);
    const id = (await tenant.json()).id as string;
    return { id, ...(await createKey(id, scopes)) };
  }

  async function createKey(tenantId: string, scopes: string[]): Promise<{ keyId: string; key: string }> {
    const key = await gw.admin(`/admin/v1/tenants/${tenantId}/keys`, { method: 'POST', json: { scopes } });
    expect(key.status).toBe(201);
    return key.json();
  }

  function uploadRaw(tenant: Tenant, body: Buffer, contentType = 'image/png') {
    return gw.fetch('/api/v1/images', { method: 'POST', headers: { 'x-api-key': tenant.key, 'content-type': contentType }, body });
  }

  function uploadMultipart(tenant: Tenant, body: Buffer, fileName = 'holiday.png', field = 'file') {
    const form = new FormData();
    form.append('caption', 'ignored');
    form.append(field, new Blob([body], { type: 'application/octet-stream' }), fileName);
    return gw.fetch('/api/v1/images', { method: 'POST', headers: { 'x-api-key': tenant.key }, body: form });
  }

  const folder = (tenant: Tenant) => join(root, 'tenants', tenant.id);
  const filesOf = (tenant: Tenant) => (existsSync(folder(tenant)) ? readdirSync(folder(tenant)).sort() : []);
  const rowsOf = async (tenant: Tenant) => (await db.query('SELECT file_name FROM images WHERE tenant_id = $1', [tenant.id])).rows.map((r) => r.file_name).sort();

  async function deleteAll(tenant: Tenant): Promise<void> {
    const list = await (await gw.fetch('/api/v1/images?limit=500', { headers: { 'x-api-key': tenant.key } })).json();
    for (const item of list.items) await gw.fetch(`/api/v1/images/${item.id}`, { method: 'DELETE', headers: { 'x-api-key': tenant.key } });
  }

  afterEach(async () => {
    await deleteAll(a);
    await deleteAll(b);
  });

  it('stores a raw upload and answers with its facts and a signed URL that serves it resized', async () => {
    const res = await uploadRaw(a, png, 'application/octet-stream');
    expect(res.status).toBe(201);
    const body = await res.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      bytes: png.length,
      size: png.length,
      type: 'image/png',
      sha256: createHash('sha256').update(png).digest('hex'),
      width: 320,
      height: 200,
      source: `local:///${body.id}.png`,
      url: expect.stringMatching(new RegExp(`^/t/${a.keyId}/[A-Za-z0-9_-]{43}/rs:fit:64:64/[A-Za-z0-9_-]+$`)),
      originalName: null,
      createdAt: expect.any(String),
    });
    expect(filesOf(a)).toEqual([`${body.id}.png`]);
    expect(readFileSync(join(folder(a), `${body.id}.png`)).equals(png)).toBe(true);
    expect(await rowsOf(a)).toEqual([`${body.id}.png`]);

    const image = await gw.fetch(body.url);
    expect(image.status).toBe(200);
    const meta = await sharp(Buffer.from(await image.arrayBuffer())).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual({ width: 64, height: 40 });
    expect(worker.requests.at(-1)?.path).toContain(Buffer.from(`local:///tenants/${a.id}/${body.id}.png`).toString('base64url'));
  });

  it('stores a multipart upload of each accepted type, decided by content not by name or header', async () => {
    const make = sharp({ create: { width: 16, height: 8, channels: 3, background: '#00ff00' } });
    const cases: Array<[Buffer, string, string]> = [
      [await make.clone().jpeg().toBuffer(), 'image/jpeg', 'jpg'],
      [await make.clone().gif().toBuffer(), 'image/gif', 'gif'],
      [await make.clone().webp().toBuffer(), 'image/webp', 'webp'],
      [await make.clone().avif().toBuffer(), 'image/avif', 'avif'],
    ];
    for (const [bytes, type, extension] of cases) {
      const res = await uploadMultipart(a, bytes, 'misleading-name.txt');
      expect(res.status).toBe(201);
      const body = await res.json();
      expect({ type: body.type, width: body.width, height: body.height, originalName: body.originalName }).toEqual({
        type,
        width: 16,
        height: 8,
        originalName: 'misleading-name.txt',
      });
      expect(body.source).toBe(`local:///${body.id}.${extension}`);
    }
    expect(filesOf(a)).toHaveLength(4);
  });

  it('lists, gets and deletes images; delete removes row and file', async () => {
    const first = await (await uploadRaw(a, png)).json();
    const second = await (await uploadMultipart(a, png)).json();
    const page = await (await gw.fetch('/api/v1/images?limit=1', { headers: { 'x-api-key': a.key } })).json();
    expect({ total: page.total, limit: page.limit, ids: page.items.map((i: { id: string }) => i.id) }).toEqual({ total: 2, limit: 1, ids: [second.id] });
    const one = await gw.fetch(`/api/v1/images/${first.id}`, { headers: { 'x-api-key': a.key } });
    expect(one.status).toBe(200);
    expect((await one.json()).sha256).toBe(first.sha256);

    const deleted = await gw.fetch(`/api/v1/images/${first.id}`, { method: 'DELETE', headers: { 'x-api-key': a.key } });
    expect(deleted.status).toBe(204);
    expect(filesOf(a)).toEqual([`${second.id}.png`]);
    expect(await rowsOf(a)).toEqual([`${second.id}.png`]);
    expect((await gw.fetch(`/api/v1/images/${first.id}`, { headers: { 'x-api-key': a.key } })).status).toBe(404);
    expect((await gw.fetch(`/api/v1/images/${first.id}`, { method: 'DELETE', headers: { 'x-api-key': a.key } })).status).toBe(404);
  });

  it("removes a deleted tenant's files with its rows", async () => {
    const gone = await createTenant('gone@uploads.example');
    const kept = await (await uploadRaw(a, png)).json();
    await uploadRaw(gone, png);
    await uploadMultipart(gone, png);
    expect(filesOf(gone)).toHaveLength(2);
    expect((await gw.admin(`/admin/v1/tenants/${gone.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(existsSync(folder(gone))).toBe(false);
    expect(await rowsOf(gone)).toEqual([]);
    expect(filesOf(a)).toEqual([`${kept.id}.png`]);
  });

  it("never shows a tenant another tenant's images", async () => {
    const image = await (await uploadRaw(a, png)).json();
    for (const method of ['GET', 'DELETE']) {
      const res = await gw.fetch(`/api/v1/images/${image.id}`, { method, headers: { 'x-api-key': b.key } });
      expect(res.status).toBe(404);
    }
    expect((await (await gw.fetch('/api/v1/images', { headers: { 'x-api-key': b.key } })).json()).total).toBe(0);
    expect(filesOf(a)).toEqual([`${image.id}.png`]);
  });

  it.each([
    ['an SVG', Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), 'image/svg+xml'],
    ['garbage labelled as PNG', randomBytes(20_000), 'image/png'],
    ['an empty body', Buffer.alloc(0), 'image/png'],
    ['a PNG signature over a broken file', Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(5000)]), 'image/png'],
  ])('refuses %s with 415 and leaves nothing behind', async (_name, bytes, contentType) => {
    const raw = await uploadRaw(a, bytes, contentType);
    expect(raw.status).toBe(415);
    expect((await raw.json()).error.code).toBe('unsupported_media_type');
    const multipart = await uploadMultipart(a, bytes, 'x.png');
    expect(multipart.status).toBe(415);
    expect(filesOf(a)).toEqual([]);
    expect(await rowsOf(a)).toEqual([]);
  });

  it('refuses a JSON body and a multipart body without the field "file"', async () => {
    const json = await uploadRaw(a, Buffer.from('{"file":"x"}'), 'application/json');
    expect(json.status).toBe(415);
    const wrongField = await uploadMultipart(a, png, 'a.png', 'image');
    expect(wrongField.status).toBe(400);
    expect(filesOf(a)).toEqual([]);
  });

  it('refuses an oversized body with 413, declared or streamed, leaving no file or temporary file', async () => {
    const big = Buffer.concat([png, randomBytes(MAX_BYTES)]);
    const declared = await uploadRaw(a, big);
    expect(declared.status).toBe(413);
    expect((await declared.json()).error.code).toBe('payload_too_large');
    // Chunked: no Content-Length, so the limit is enforced on the stream itself.
    const streamed = await rawRequest(gw.url, '/api/v1/images', {
      method: 'POST',
      headers: { 'x-api-key': a.key, 'content-type': 'image/png', 'transfer-encoding': 'chunked' },
      body: big,
    });
    expect(streamed.status).toBe(413);
    const multipart = await uploadMultipart(a, big);
    expect(multipart.status).toBe(413);
    expect(filesOf(a)).toEqual([]);
    expect(await rowsOf(a)).toEqual([]);
  });

  /** Sets the tenant's storage quota and waits until its key's cached limits carry it (invalidation: within 2 s). */
  async function setStorageQuota(tenant: Tenant, storageBytes: number | null): Promise<void> {
    const patched = await gw.admin(`/admin/v1/tenants/${tenant.id}`, { method: 'PATCH', json: { quotas: { storageBytes } } });
    expect(patched.status).toBe(200);
    const expected = storageBytes ?? (await patched.json()).limits.storageBytes;
    await poll(async () => {
      const usage = await (await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': tenant.key } })).json();
      return usage.storageBytes.limit === expected;
    }, 2_000);
  }

  it('enforces the storage quota on the real size, and a delete frees it', async () => {
    await setStorageQuota(b, png.length + 100);
    const first = await uploadRaw(b, png);
    expect(first.status).toBe(201);
    const firstBody = await first.json();
    const second = await uploadMultipart(b, png);
    expect(second.status).toBe(429);
    expect((await second.json()).error).toMatchObject({ code: 'quota_exceeded', quota: 'storageBytes' });
    // Chunked, so the size is only known once streamed: enforced at the insert.
    const chunked = await rawRequest(gw.url, '/api/v1/images', {
      method: 'POST',
      headers: { 'x-api-key': b.key, 'content-type': 'image/png', 'transfer-encoding': 'chunked' },
      body: png,
    });
    expect(chunked.status).toBe(429);
    expect(filesOf(b)).toEqual([`${firstBody.id}.png`]);
    expect(await rowsOf(b)).toEqual([`${firstBody.id}.png`]);

    await gw.fetch(`/api/v1/images/${firstBody.id}`, { method: 'DELETE', headers: { 'x-api-key': b.key } });
    expect((await uploadRaw(b, png)).status).toBe(201);
    await setStorageQuota(b, null);
  });

  it('decides concurrent uploads one at a time, so the quota is never overshot', async () => {
    await setStorageQuota(b, png.length * 3);
    // Chunked bodies: the pre-write check cannot know their size, only the insert can.
    const upload = () =>
      rawRequest(gw.url, '/api/v1/images', {
        method: 'POST',
        headers: { 'x-api-key': b.key, 'content-type': 'image/png', 'transfer-encoding': 'chunked' },
        body: png,
      });
    const statuses = (await Promise.all(Array.from({ length: 8 }, upload))).map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 201, 429, 429, 429, 429, 429]);
    expect(filesOf(b)).toHaveLength(3);
    expect(await rowsOf(b)).toHaveLength(3);
    await setStorageQuota(b, null);
  });

  it('leaves no file and no row when the client goes away mid-upload', async () => {
    const url = new URL(gw.url);
    const body = Buffer.concat([png, randomBytes(100_000)]);
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: '/api/v1/images',
      headers: { 'x-api-key': a.key, 'content-type': 'image/png', 'content-length': String(body.length) },
    });
    req.on('error', () => undefined);
    req.write(body.subarray(0, 60_000));
    // Wait until the gateway is streaming into its temporary file, then vanish.
    await poll(() => filesOf(a).some((f) => f.endsWith('.upload')));
    req.destroy();
    await poll(() => filesOf(a).length === 0);
    expect(await rowsOf(a)).toEqual([]);
  });

  it('needs images:write to upload or delete, images:read to list', async () => {
    const readOnly = { id: a.id, ...(await createKey(a.id, ['images:read'])) };
    expect((await uploadRaw(readOnly, png)).status).toBe(403);
    expect((await gw.fetch('/api/v1/images', { headers: { 'x-api-key': readOnly.key } })).status).toBe(200);
    const writeOnly = { id: a.id, ...(await createKey(a.id, ['images:write'])) };
    expect((await gw.fetch('/api/v1/images', { headers: { 'x-api-key': writeOnly.key } })).status).toBe(403);
    expect((await gw.fetch('/api/v1/images', { method: 'POST', body: png })).status).toBe(401);
  });

  it('counts the upload body toward bandwidth', async () => {
    const reader = await createKey(a.id, ['usage:read']);
    const usage = async () => {
      const res = await gw.fetch('/api/v1/usage', { headers: { 'x-api-key': reader.key } });
      expect(res.status).toBe(200);
      return (await res.json()).bandwidthBytes.used as number;
    };
    const before = await usage();
    expect((await uploadRaw(a, png)).status).toBe(201);
    await poll(async () => (await usage()) - before >= png.length);
  });
});

/** Polls a condition that an asynchronous step on the server will make true. */
async function poll(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}
