import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { ImgproxySigner } from '../../signing/imgproxy-signature';
import { startImgproxyWorker, type ImgproxyWorker } from './imgproxy-worker.server';

const KEY = '943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881';
const SALT = '520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5';
const SECRET = 'worker-secret';
const AUTH = { authorization: `Bearer ${SECRET}` };
const signer = new ImgproxySigner(KEY, SALT);

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** node:http sends the path byte for byte (fetch would resolve `..` and re-encode). */
function get(worker: ImgproxyWorker, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: worker.port, path: target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const b64 = (source: string): string => Buffer.from(source).toString('base64url');

describe('imgproxy-compatible worker', () => {
  let dir: string;
  let root: string;
  let worker: ImgproxyWorker;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imgproxy-worker-'));
    root = path.join(dir, 'root');
    await mkdir(path.join(root, 'tenants', 't1'), { recursive: true });
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 40, b: 40 } } })
      .png()
      .toBuffer();
    await writeFile(path.join(root, 'img.png'), png);
    await writeFile(path.join(root, 'tenants', 't1', 'cat photo.png'), png);
    await writeFile(path.join(dir, 'outside.png'), png);
    await symlink(path.join(dir, 'outside.png'), path.join(root, 'escape.png'));
    worker = await startImgproxyWorker({ port: 0, keyHex: KEY, saltHex: SALT, secret: SECRET, root });
  });

  afterAll(async () => {
    await worker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers /health without credentials', async () => {
    const answer = await get(worker, '/health');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.toString())).toEqual({ status: 'ok' });
  });

  it('resizes a plain local source and answers with imgproxy-like headers', async () => {
    const answer = await get(worker, signer.signPath('/rs:fit:20:20/plain/local:///img.png'), AUTH);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('image/png');
    expect(Number(answer.headers['content-length'])).toBe(answer.body.length);
    expect(answer.headers['cache-control']).toBe('max-age=31536000, public');
    expect(answer.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const meta = await sharp(answer.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 20, 15]);
  });

  it('reads base64 sources and converts with .ext, cropping with fill', async () => {
    const answer = await get(worker, signer.signPath(`/rs:fill:10:10/g:sm/${b64('local:///img.png')}.webp`), AUTH);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('image/webp');
    const meta = await sharp(answer.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 10, 10]);
  });

  it.each([
    ['/w:8/plain/local:///img.png@jpg', 'image/jpeg', 8, 6],
    ['/h:15/f:webp/q:50/plain/local:///img.png', 'image/webp', 20, 15],
    ['/rs:fit:400:400/plain/local:///img.png', 'image/png', 40, 30],
    ['/rs:fit:80:0:1/plain/local:///img.png', 'image/png', 80, 60],
    ['/rs:force:10:30/g:nowe/plain/local:///img.png', 'image/png', 10, 30],
    ['/rs:fill-down:80:80/plain/local:///img.png', 'image/png', 30, 30],
    ['/s:10:10/rt:fill/plain/local:///tenants/t1/cat%2520photo.png@avif', 'image/avif', 10, 10],
  ])('applies %s', async (signedPath, contentType, width, height) => {
    const answer = await get(worker, signer.signPath(signedPath), AUTH);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe(contentType);
    const meta = await sharp(answer.body).metadata();
    expect([meta.width, meta.height]).toEqual([width, height]);
  });

  it('answers 304 to a matching If-None-Match and a new ETag for other options', async () => {
    const target = signer.signPath('/w:12/plain/local:///img.png');
    const first = await get(worker, target, AUTH);
    const etag = String(first.headers.etag);
    const again = await get(worker, target, { ...AUTH, 'if-none-match': `"other", ${etag}` });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const other = await get(worker, signer.signPath('/w:13/plain/local:///img.png'), AUTH);
    expect(other.headers.etag).not.toBe(etag);
  });

  it('answers HEAD with headers only', async () => {
    const answer = await get(worker, signer.signPath('/w:12/plain/local:///img.png'), AUTH, 'HEAD');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('image/png');
    expect(answer.body.length).toBe(0);
  });

  it('refuses bad signatures and a missing or wrong secret with 403', async () => {
    const signed = signer.signPath('/rs:fit:20:20/plain/local:///img.png');
    const tampered = signed.replace('20:20', '20:21');
    expect((await get(worker, tampered, AUTH)).status).toBe(403);
    expect((await get(worker, '/insecure/rs:fit:20:20/plain/local:///img.png', AUTH)).status).toBe(403);
    const otherKey = new ImgproxySigner(SALT, KEY).signPath('/rs:fit:20:20/plain/local:///img.png');
    expect((await get(worker, otherKey, AUTH)).status).toBe(403);
    expect((await get(worker, signed)).status).toBe(403);
    expect((await get(worker, signed, { authorization: 'Bearer nope' })).status).toBe(403);
  });

  it.each([
    ['a missing file', '/w:10/plain/local:///missing.png', 404],
    ['a directory', '/w:10/plain/local:///tenants', 404],
    ['.. out of the root', '/w:10/plain/local:///../outside.png', 404],
    ['encoded .. out of the root', '/w:10/plain/local:///%252e%252e/outside.png', 404],
    ['a symlink out of the root', '/w:10/plain/local:///escape.png', 404],
    ['a remote source', '/w:10/plain/https://example.com/a.png', 404],
    ['an unknown option', '/foo:1/plain/local:///img.png', 422],
    ['an invalid width', '/rs:fill:abc/plain/local:///img.png', 422],
    ['an unsupported format', '/plain/local:///img.png@tiff', 422],
    ['a huge result', '/rs:fit:100000:10/plain/local:///img.png', 422],
    ['an encrypted source', '/w:10/enc/abcdef', 404],
  ])('answers %s with %i', async (_name, signedPath, status) => {
    expect((await get(worker, signer.signPath(signedPath), AUTH)).status).toBe(status);
  });

  it('refuses sources over max_src_resolution and max_src_file_size with 422, like imgproxy', async () => {
    // img.png is 40 x 30 = 1200 pixels.
    expect((await get(worker, signer.signPath('/msr:0.001/plain/local:///img.png'), AUTH)).status).toBe(422);
    expect((await get(worker, signer.signPath('/msr:0.0013/plain/local:///img.png'), AUTH)).status).toBe(200);
    expect((await get(worker, signer.signPath('/msfs:10/plain/local:///img.png'), AUTH)).status).toBe(422);
    expect((await get(worker, signer.signPath('/msfs:100000/plain/local:///img.png'), AUTH)).status).toBe(200);
  });

  it('scales the result down to max_result_dimension and honours dpr', async () => {
    const answer = await get(worker, signer.signPath('/w:20/dpr:2/mrd:16/plain/local:///img.png'), AUTH);
    expect(answer.status).toBe(200);
    const meta = await sharp(answer.body).metadata();
    expect([meta.width, meta.height]).toEqual([16, 12]);
  });

  it('answers an expired exp with 404, like imgproxy, and serves a future one', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await get(worker, signer.signPath(`/exp:${now - 10}/plain/local:///img.png`), AUTH)).status).toBe(404);
    expect((await get(worker, signer.signPath(`/exp:${now + 60}/plain/local:///img.png`), AUTH)).status).toBe(200);
  });

  it('draws its watermark with the position, scale and opacity of wm; a later wm wins', async () => {
    const answer = await get(worker, signer.signPath('/wm:0.2:nowe/wm:1:nowe:0:0:0.5/f:png/plain/local:///img.png'), AUTH);
    expect(answer.status).toBe(200);
    const { data, info } = await sharp(answer.body).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    // A 15 px square (half of 30) in the top-left corner: dark frame, white inside; the rest untouched.
    expect(at(0, 0)).toEqual([20, 20, 20]);
    expect(at(7, 7)).toEqual([255, 255, 255]);
    expect(at(30, 20)).toEqual([200, 40, 40]);
    expect((await get(worker, signer.signPath('/wm:2/plain/local:///img.png'), AUTH)).status).toBe(422);
  });

  it('records what it received', async () => {
    const target = signer.signPath('/w:5/plain/local:///img.png');
    await get(worker, target, { ...AUTH, 'x-request-id': 'req-42' });
    const recorded = worker.requests.find((r) => r.path === target);
    expect(recorded?.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(recorded?.headers['x-request-id']).toBe('req-42');
  });

  it('creates its root when it does not exist yet (a fresh clone has no uploads folder)', async () => {
    const fresh = path.join(root, '..', 'not-yet', 'uploads');
    const empty = await startImgproxyWorker({ root: fresh });
    try {
      expect((await stat(fresh)).isDirectory()).toBe(true);
      expect((await get(empty, '/insecure/w:10/plain/local:///missing.png')).status).toBe(404);
    } finally {
      await empty.close();
    }
  });

  it('accepts any signature, insecure included, when no key is configured', async () => {
    const open = await startImgproxyWorker({ root });
    try {
      const answer = await get(open, '/insecure/w:10/plain/local:///img.png');
      expect(answer.status).toBe(200);
      expect((await sharp(answer.body).metadata()).width).toBe(10);
    } finally {
      await open.close();
    }
  });
});
