import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import sharp from 'sharp';
import {
  MalformedUploadError,
  receiveMultipartUpload,
  receiveRawUpload,
  UnsupportedUploadTypeError,
  UploadTooLargeError,
} from './upload-receiver';

let dir: string;
let png: Buffer;
beforeAll(async () => {
  png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#336699' } }).png().toBuffer();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'igw-receiver-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A source that hands its bytes over in small chunks, as a socket would. */
function chunked(bytes: Buffer, size = 1000): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

async function multipart(form: FormData): Promise<{ body: Buffer; contentType: string }> {
  const response = new Response(form);
  return { body: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type') ?? '' };
}

const options = (maxBytes = 1 << 20, allowSvg = false) => ({ tempPath: join(dir, 'upload.part'), maxBytes, allowSvg });

describe('receiveRawUpload', () => {
  it('stores the body, with its size, sha256 and sniffed type', async () => {
    const result = await receiveRawUpload(chunked(png, 7), options());
    expect(result).toMatchObject({ bytes: png.length, bodyBytes: png.length, type: { kind: 'png', extension: 'png' } });
    expect(result.sha256).toBe(createHash('sha256').update(png).digest('hex'));
    expect(readFileSync(join(dir, 'upload.part')).equals(png)).toBe(true);
  });

  it('fails at the limit without writing the whole body', async () => {
    const big = Buffer.concat([png, Buffer.alloc(100_000)]);
    await expect(receiveRawUpload(chunked(big), options(50_000))).rejects.toBeInstanceOf(UploadTooLargeError);
  });

  it('accepts a file of exactly the limit', async () => {
    await expect(receiveRawUpload(chunked(png), options(png.length))).resolves.toMatchObject({ bytes: png.length });
  });

  it('refuses unknown content before anything reaches the disk', async () => {
    const garbage = Buffer.alloc(10_000, 0x41);
    await expect(receiveRawUpload(chunked(garbage), options())).rejects.toBeInstanceOf(UnsupportedUploadTypeError);
    expect(existsSync(join(dir, 'upload.part')) ? readFileSync(join(dir, 'upload.part')).length : 0).toBe(0);
  });

  it('refuses an empty body and SVG unless allowed', async () => {
    await expect(receiveRawUpload(Readable.from([]), options())).rejects.toBeInstanceOf(UnsupportedUploadTypeError);
    rmSync(join(dir, 'upload.part'), { force: true });
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    await expect(receiveRawUpload(chunked(svg), options())).rejects.toThrow(/SVG/);
    rmSync(join(dir, 'upload.part'), { force: true });
    await expect(receiveRawUpload(chunked(svg), options(1 << 20, true))).resolves.toMatchObject({ type: { kind: 'svg' } });
  });

  it('refuses a second file at the same temporary path instead of overwriting it', async () => {
    await receiveRawUpload(chunked(png), options());
    await expect(receiveRawUpload(chunked(png), options())).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('fails when the client goes away mid-body', async () => {
    const source = new PassThrough();
    const pending = receiveRawUpload(source, options());
    source.write(png.subarray(0, 100));
    source.destroy(new Error('aborted'));
    await expect(pending).rejects.toBeInstanceOf(MalformedUploadError);
  });
});

describe('receiveMultipartUpload', () => {
  it('stores the field "file" and counts the whole body for bandwidth', async () => {
    const form = new FormData();
    form.append('note', 'hello');
    form.append('file', new Blob([png], { type: 'text/plain' }), 'holiday.png');
    const { body, contentType } = await multipart(form);
    const result = await receiveMultipartUpload(chunked(body, 333), { 'content-type': contentType }, options());
    expect(result).toMatchObject({ bytes: png.length, bodyBytes: body.length, originalName: 'holiday.png', type: { kind: 'png' } });
    expect(readFileSync(join(dir, 'upload.part')).equals(png)).toBe(true);
  });

  it('refuses a body without the field "file"', async () => {
    const form = new FormData();
    form.append('image', new Blob([png]), 'a.png');
    const { body, contentType } = await multipart(form);
    await expect(receiveMultipartUpload(chunked(body), { 'content-type': contentType }, options())).rejects.toThrow(/field "file"/);
  });

  it('reports the size limit, not the parse error it causes', async () => {
    const form = new FormData();
    form.append('file', new Blob([png, Buffer.alloc(200_000)]), 'big.png');
    const { body, contentType } = await multipart(form);
    await expect(receiveMultipartUpload(chunked(body), { 'content-type': contentType }, options(100_000))).rejects.toBeInstanceOf(
      UploadTooLargeError,
    );
  });

  it('refuses a body cut off in the middle of the file', async () => {
    const form = new FormData();
    form.append('file', new Blob([png]), 'a.png');
    const { body, contentType } = await multipart(form);
    const source = new PassThrough();
    const pending = receiveMultipartUpload(source, { 'content-type': contentType }, options());
    source.write(body.subarray(0, body.length - 200));
    source.destroy(new Error('aborted'));
    await expect(pending).rejects.toBeInstanceOf(MalformedUploadError);
  });

  it('refuses a content type without a boundary', async () => {
    await expect(receiveMultipartUpload(chunked(png), { 'content-type': 'multipart/form-data' }, options())).rejects.toBeInstanceOf(
      MalformedUploadError,
    );
  });
});
