import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { finished, pipeline } from 'node:stream/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import Busboy from '@fastify/busboy';
import { ImageType, SNIFF_BYTES, sniffImageType } from './image-type.sniffer';

/**
 * Streams one uploaded file to a temporary file while counting, hashing and sniffing it (docs/imgproxy.md),
 * so the size limit and the type are enforced without ever holding the body in memory. Plain
 * functions over Node streams; the service decides what the results mean for the tenant.
 */

export interface ReceiveOptions {
  /** Created exclusively (`wx`): a name collision is an error, never an overwrite. */
  readonly tempPath: string;
  /** Limit of the whole request body (multipart framing and other parts included), so of the file too. */
  readonly maxBytes: number;
  readonly allowSvg: boolean;
}

export interface ReceivedFile {
  /** Size of the stored file. */
  readonly bytes: number;
  readonly sha256: string;
  readonly type: ImageType;
  /** The client's file name (multipart only), kept for display; never used on disk. */
  readonly originalName?: string;
  /** Every body byte read from the client, multipart framing included (bandwidth accounting). */
  readonly bodyBytes: number;
}

export class UploadTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`The upload exceeds the limit of ${maxBytes} bytes.`);
  }
}

export class UnsupportedUploadTypeError extends Error {
  constructor(readonly svg: boolean) {
    super(
      svg
        ? 'SVG uploads are not accepted.'
        : 'The file is not a JPEG, PNG, GIF, WebP or AVIF image (decided by its content, not its name or header).',
    );
  }
}

/** The body is not a usable upload: no `file` field, a broken multipart body, a client that went away. */
export class MalformedUploadError extends Error {}

/**
 * Counts and hashes what passes, holds the first bytes back until their type is known (so nothing
 * of a refused file reaches the disk) and fails as soon as the size limit is crossed.
 */
class UploadInspector extends Transform {
  bytes = 0;
  type: ImageType | undefined;
  private readonly hash = createHash('sha256');
  private head: Buffer[] = [];
  private headBytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly allowSvg: boolean,
  ) {
    super();
  }

  get sha256(): string {
    return this.hash.digest('hex');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(new UploadTooLargeError(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    if (this.type) {
      callback(null, chunk);
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < SNIFF_BYTES) {
      callback();
      return;
    }
    callback(this.decide());
  }

  override _flush(callback: TransformCallback): void {
    callback(this.type ? null : this.decide());
  }

  private decide(): Error | null {
    const head = Buffer.concat(this.head);
    this.head = [];
    const type = sniffImageType(head.subarray(0, SNIFF_BYTES));
    if (!type || (type.kind === 'svg' && !this.allowSvg)) return new UnsupportedUploadTypeError(type?.kind === 'svg');
    this.type = type;
    this.push(head);
    return null;
  }
}

/**
 * A raw body (`Content-Type: image/...` or `application/octet-stream`). The source is never
 * destroyed here: on a refusal the caller still answers over the same connection.
 */
export async function receiveRawUpload(source: Readable, options: ReceiveOptions): Promise<ReceivedFile> {
  const counter = countBytes(source);
  const stored = await storeStream(source, options, source);
  return { ...stored, bodyBytes: counter.bytes };
}

/**
 * Fails once more than `maxBytes` passed. On a multipart body it sits before the parser, so
 * every part counts (a valid image followed by a 1 GiB part that nobody stores is refused all
 * the same), and the file being written is aborted through `abort`.
 */
class BodyLimit extends Transform {
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly abort: AbortController,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes <= this.maxBytes) {
      callback(null, chunk);
      return;
    }
    const error = new UploadTooLargeError(this.maxBytes);
    this.abort.abort(error);
    callback(error);
  }
}

/** A `multipart/form-data` body whose field `file` holds the image; other fields are ignored. */
export async function receiveMultipartUpload(
  source: Readable,
  headers: IncomingHttpHeaders,
  options: ReceiveOptions,
): Promise<ReceivedFile> {
  const counter = countBytes(source);
  const abort = new AbortController();
  let parser: InstanceType<typeof Busboy>;
  try {
    parser = new Busboy({
      headers: headers as { 'content-type': string },
      // Our own counter enforces maxBytes; busboy's limit only stops it reading far past it.
      limits: { files: 1, fileSize: options.maxBytes + 1, fields: 20, fieldSize: 4096, parts: 25, headerPairs: 50 },
    });
  } catch (error) {
    throw new MalformedUploadError(`The multipart body cannot be read: ${(error as Error).message}`);
  }

  let upload: Promise<Omit<ReceivedFile, 'bodyBytes'>> | undefined;
  parser.on('file', (field: string, file: Readable, filename: string) => {
    if (field !== 'file' || upload) {
      file.resume();
      return;
    }
    upload = storeStream(file, options, source, filename || undefined, abort.signal);
    // Observed below; this keeps an early failure from being reported as unhandled meanwhile.
    upload.catch(() => undefined);
  });

  const parsed = new Promise<void>((resolve, reject) => {
    parser.once('finish', resolve);
    parser.once('error', (error: Error) => reject(new MalformedUploadError(`The multipart body is malformed: ${error.message}`)));
  });
  const sourceDone = finished(source, { writable: false }).catch(() => {
    throw new MalformedUploadError('The upload was interrupted.');
  });
  const limit = new BodyLimit(options.maxBytes, abort);
  const withinLimit = new Promise<never>((_resolve, reject) => limit.once('error', reject));
  source.pipe(limit).pipe(parser);
  try {
    await Promise.race([Promise.all([parsed, sourceDone]), withinLimit]);
  } catch (error) {
    // A refusal of the file itself (size, type) explains the broken body better than the parser does.
    if (upload) await upload;
    throw error;
  }
  if (!upload) throw new MalformedUploadError('The multipart body has no file in the field "file".');
  const stored = await upload;
  return { ...stored, bodyBytes: counter.bytes };
}

async function storeStream(
  input: Readable,
  options: ReceiveOptions,
  connection: Readable,
  originalName?: string,
  abort?: AbortSignal,
): Promise<Omit<ReceivedFile, 'bodyBytes'>> {
  const inspector = new UploadInspector(options.maxBytes, options.allowSvg);
  // A client that disconnects mid-body ends `connection` early, and pipe() forwards no errors:
  // fail the file pipeline ourselves, so the temporary file is removed and nothing waits forever.
  const interrupted = (): void => {
    if (!inspector.destroyed) inspector.destroy(new MalformedUploadError('The upload was interrupted.'));
  };
  finished(connection, { writable: false }).catch(interrupted);
  // The whole body went over the limit (another part did): the file stops here too.
  abort?.addEventListener('abort', () => {
    if (!inspector.destroyed) inspector.destroy(abort.reason as Error);
  }, { once: true });
  input.pipe(inspector);
  const file = createWriteStream(options.tempPath, { flags: 'wx', mode: 0o644 });
  let created = false;
  file.once('open', () => (created = true));
  try {
    await pipeline(inspector, file);
  } catch (error) {
    input.unpipe(inspector);
    // Read and drop the rest, so the refusal can still be answered on this connection.
    input.resume();
    // The file is opened asynchronously: a refusal can come before the open completes, and
    // removing the path then would leave the file the late open creates. Wait for the stream
    // to close, then remove the file if this call created it (never another upload's).
    if (!file.closed) await once(file, 'close').catch(() => undefined);
    if (created) await rm(options.tempPath, { force: true });
    throw error;
  }
  if (!inspector.type) throw new UnsupportedUploadTypeError(false);
  return { bytes: inspector.bytes, sha256: inspector.sha256, type: inspector.type, originalName };
}

function countBytes(source: Readable): { bytes: number } {
  const counter = { bytes: 0 };
  source.on('data', (chunk: Buffer) => (counter.bytes += chunk.length));
  return counter;
}
