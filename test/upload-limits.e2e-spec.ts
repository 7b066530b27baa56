import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { Client } from 'pg';
import sharp from 'sharp';
import { databaseUrl } from './support/test-env';
import { TestApp, createTestApp } from './support/test-app';
import { createTenantWithKey, TenantWithKey, UNLIMITED } from './support/tenants';

/**
 * Upload limits (docs/imgproxy.md, Uploads): `uploads.maxBytes` bounds the whole request body,
 * every multipart part included, and `uploads.maxPixels` the image its header describes; both
 * answer 413 and leave nothing on disk or in the database.
 */
const MAX_BYTES = 256 * 1024;

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** A PNG whose header claims `width` × `height` in a few dozen bytes: the shape of a decompression bomb. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(16))), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A chunked multipart body: the image in `file`, then another part of `extraBytes`, streamed in 64 KiB pieces. */
function chunkedMultipart(url: string, key: string, image: Buffer, extraBytes: number): Promise<{ status: number; body: string }> {
  const boundary = `----igw${randomBytes(8).toString('hex')}`;
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, method: 'POST', path: '/api/v1/images', headers: { 'x-api-key': key, 'content-type': `multipart/form-data; boundary=${boundary}` } },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="ok.png"\r\nContent-Type: image/png\r\n\r\n`);
    req.write(image);
    req.write(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="padding"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    let left = extraBytes;
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const pump = (): void => {
      while (left > 0 && !req.destroyed) {
        left -= piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed) req.end(`\r\n--${boundary}--\r\n`);
    };
    pump();
  });
}

describe('upload body and image limits', () => {
  let root: string;
  let gw: TestApp;
  let db: Client;
  let tenant: TenantWithKey;
  let png: Buffer;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'igw-upload-limits-'));
    gw = await createTestApp({ config: { uploads: { root, maxBytes: MAX_BYTES }, rateLimit: { ip: { perMinute: 100_000 } } } });
    db = new Client({ connectionString: databaseUrl(gw.database) });
    await db.connect();
    tenant = await createTenantWithKey(gw, { scopes: ['images:read', 'images:write'], ...UNLIMITED });
    png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } }).png().toBuffer();
  });
  afterAll(async () => {
    await db?.end();
    await gw?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const files = () => {
    const folder = join(root, 'tenants', tenant.tenantId);
    return existsSync(folder) ? readdirSync(folder) : [];
  };
  const rows = async () => Number((await db.query('SELECT count(*) FROM images WHERE tenant_id = $1', [tenant.tenantId])).rows[0].count);
  const uploadRaw = (body: Buffer) => gw.fetch('/api/v1/images', { method: 'POST', headers: { 'x-api-key': tenant.key, 'content-type': 'image/png' }, body });

  it('refuses a chunked multipart body whose second part takes it past the limit, storing nothing', async () => {
    const res = await chunkedMultipart(gw.url, tenant.key, png, 4 * MAX_BYTES);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error.code).toBe('payload_too_large');
    expect(files()).toEqual([]);
    expect(await rows()).toBe(0);
  });

  it('counts multipart framing and other parts against a declared length too', async () => {
    const form = new FormData();
    form.append('file', new Blob([png], { type: 'image/png' }), 'ok.png');
    form.append('padding', 'x'.repeat(MAX_BYTES));
    const res = await gw.fetch('/api/v1/images', { method: 'POST', headers: { 'x-api-key': tenant.key }, body: form });
    expect(res.status).toBe(413);
    expect(files()).toEqual([]);
  });

  it('refuses an image whose header names more than uploads.maxPixels (50 MP), raw or multipart', async () => {
    const bomb = pngHeaderOnly(8_000, 8_000);
    for (const res of [
      await uploadRaw(bomb),
      await gw.fetch('/api/v1/images', {
        method: 'POST',
        headers: { 'x-api-key': tenant.key },
        body: (() => {
          const form = new FormData();
          form.append('file', new Blob([pngHeaderOnly(20_000, 20_000)], { type: 'image/png' }), 'bomb.png');
          return form;
        })(),
      }),
    ]) {
      expect(res.status).toBe(413);
      expect((await res.json()).error).toMatchObject({ code: 'payload_too_large', limitPixels: 50_000_000 });
    }
    expect(files()).toEqual([]);
    expect(await rows()).toBe(0);
  });

  it('still stores an image within both limits', async () => {
    const res = await uploadRaw(png);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ width: 64, height: 48 });
  });
});
