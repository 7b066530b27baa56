import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateImageUrl } from '@imgproxy/imgproxy-node';
import sharp from 'sharp';
import { startImgproxyWorker, type ImgproxyWorker } from '../src/dev/imgproxy-worker/imgproxy-worker.server';
import { TestApp, createTestApp } from './support/test-app';
import { HIGH_RATE_LIMIT_CONFIG, UNLIMITED, createTenantWithKey, type TenantWithKey } from './support/tenants';

jest.setTimeout(60_000);

/**
 * What the image policy does to the image itself: the gateway's options reach the
 * imgproxy-compatible worker, which applies them like imgproxy (docs/imgproxy.md, image policy).
 */
const POOL_KEY = randomBytes(32).toString('hex');
const POOL_SALT = randomBytes(32).toString('hex');
const POOL_SECRET = 'policy-worker-secret';
const BLUE = { r: 32, g: 128, b: 192 };

describe('image policy applied by the imgproxy-compatible worker', () => {
  let root: string;
  let worker: ImgproxyWorker;
  let gw: TestApp;
  let t: TenantWithKey;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'igw-policy-worker-'));
    worker = await startImgproxyWorker({ keyHex: POOL_KEY, saltHex: POOL_SALT, secret: POOL_SECRET, root });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        imgproxy: { key: POOL_KEY, salt: POOL_SALT, secret: POOL_SECRET },
        uploads: { root },
        backends: [{ name: 'worker', url: worker.url, weight: 1 }],
        healthCheck: { intervalSeconds: 3600 },
      },
    });
    t = await createTenantWithKey(gw, UNLIMITED);
    mkdirSync(join(root, 'tenants', t.tenantId), { recursive: true });
    await sharp({ create: { width: 400, height: 300, channels: 3, background: BLUE } })
      .png()
      .toFile(join(root, 'tenants', t.tenantId, 'photo.png'));
  });
  afterAll(async () => {
    await gw?.close();
    await worker?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function setPolicy(imagePolicy: unknown): Promise<void> {
    const res = await gw.admin(`/admin/v1/tenants/${t.tenantId}`, { method: 'PATCH', json: { imagePolicy } });
    expect(res.status).toBe(200);
  }

  async function image(options: Parameters<typeof generateImageUrl>[0]['options']) {
    const target = generateImageUrl({ endpoint: `${gw.url}/t/${t.keyId}`, url: 'local:///photo.png', options, key: t.signingKey, salt: t.signingSalt });
    const res = await fetch(target);
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, body };
  }

  async function pixel(png: Buffer, x: number, y: number): Promise<{ r: number; g: number; b: number }> {
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const at = (y * info.width + x) * info.channels;
    return { r: data[at], g: data[at + 1], b: data[at + 2] };
  }

  it('keeps the result within the caps, whatever size the URL asks for', async () => {
    await setPolicy({ maxWidth: 100, maxHeight: 100 });
    for (const options of [{ resize: { resizing_type: 'fit', width: 2000, height: 2000 }, enlarge: true }, {}, { width: 1000 }, { height: 90, dpr: 4 }] as const) {
      const { status, body } = await image({ ...options, format: 'png' });
      expect(status).toBe(200);
      const meta = await sharp(body).metadata();
      expect([JSON.stringify(options), meta.width! <= 100 && meta.height! <= 100]).toEqual([JSON.stringify(options), true]);
    }
    const fitted = await sharp((await image({ format: 'png' })).body).metadata();
    expect([fitted.width, fitted.height]).toEqual([100, 75]);
  });

  it('draws the watermark the tenant cannot remove, where its policy puts it', async () => {
    await setPolicy({ maxWidth: null, maxHeight: null, watermark: { opacity: 1, position: 'soea', scale: 0.2 } });
    const { status, body } = await image({ width: 200, format: 'png', watermark: { opacity: 0.0001 } });
    expect(status).toBe(200);
    // 200 x 150 with a 30 px watermark in the bottom-right corner: white inside a dark frame.
    expect(await pixel(body, 184, 134)).toEqual({ r: 255, g: 255, b: 255 });
    expect(await pixel(body, 10, 10)).toEqual(BLUE);
  });

  it('refuses sources over the tenant limits, in the backend, as imgproxy does (422)', async () => {
    await setPolicy({ watermark: null, maxSrcResolution: 0.1 });
    expect((await image({ width: 50 })).status).toBe(422);
    await setPolicy({ maxSrcResolution: null, maxSrcFileSize: 100 });
    expect((await image({ width: 50 })).status).toBe(422);
    await setPolicy({ maxSrcFileSize: 1_000_000, maxSrcResolution: 1 });
    expect((await image({ width: 50 })).status).toBe(200);
  });
});
