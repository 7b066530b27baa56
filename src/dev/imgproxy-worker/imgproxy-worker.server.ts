import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { ImgproxySigner } from '../../signing/imgproxy-signature';
import { decodeImgproxySource, parseImgproxyPath, percentDecode, type ImgproxyPath } from '../../signing/imgproxy-url';
import { isImgproxyRejection } from '../../signing/signing.errors';
import { CONTENT_TYPES, planProcessing, processImage, ProcessingOptionError } from './imgproxy-worker.processing';

/**
 * A small imgproxy-compatible server for development, tests and the demo (docs/imgproxy.md): imgproxy's
 * URL format and signatures, `Authorization: Bearer` secret, `/health`, the common resizing
 * options, local sources only. It is not the product: production runs real imgproxy.
 */

export interface ImgproxyWorkerOptions {
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /** With saltHex: verify signatures like IMGPROXY_KEY/IMGPROXY_SALT; without: any signature passes. */
  readonly keyHex?: string;
  readonly saltHex?: string;
  /** Like IMGPROXY_SECRET: every image request needs `Authorization: Bearer <secret>`. */
  readonly secret?: string;
  /** Like IMGPROXY_LOCAL_FILESYSTEM_ROOT: where `local:///` sources are read. */
  readonly root: string;
  /** How many requests `requests` keeps (oldest dropped first); 1000 by default. */
  readonly maxRecordedRequests?: number;
  /** Receives unexpected failures (answered 500); console.error by default. */
  readonly onError?: (error: unknown) => void;
}

export interface RecordedRequest {
  readonly method: string;
  /** The raw request target, as received. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

export interface ImgproxyWorker {
  readonly url: string;
  readonly port: number;
  /** What the worker received, so tests can assert on signed paths and forwarded headers. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

/** imgproxy's default IMGPROXY_TTL. */
const CACHE_CONTROL = 'max-age=31536000, public';
const MAX_SOURCE_BYTES = 64 * 1024 * 1024;
const LOCAL_PREFIX = 'local:///';

/** An answer with an imgproxy status code and a plain-text message. */
class WorkerError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startImgproxyWorker(options: ImgproxyWorkerOptions): Promise<ImgproxyWorker> {
  if ((options.keyHex === undefined) !== (options.saltHex === undefined)) {
    throw new TypeError('keyHex and saltHex must be given together');
  }
  const signer = options.keyHex && options.saltHex ? new ImgproxySigner(options.keyHex, options.saltHex) : undefined;
  // A fresh clone has no uploads folder yet: the worker serves it as soon as uploads arrive.
  await fs.mkdir(options.root, { recursive: true });
  // Resolve symlinks once, so containment checks compare real paths.
  const root = await fs.realpath(options.root);
  if (!(await fs.stat(root)).isDirectory()) throw new TypeError(`root is not a directory: ${options.root}`);
  const expectedAuthorization = options.secret ? Buffer.from(`Bearer ${options.secret}`) : undefined;
  const maxRecorded = options.maxRecordedRequests ?? 1000;
  const onError = options.onError ?? ((error: unknown) => console.error('imgproxy worker: unexpected error', error));
  const requests: RecordedRequest[] = [];

  const server = createServer((req, res) => {
    if (maxRecorded > 0) {
      if (requests.length >= maxRecorded) requests.shift();
      requests.push({ method: req.method ?? 'GET', path: req.url ?? '', headers: req.headers });
    }
    handle(req, res, { signer, root, expectedAuthorization }).catch((error: unknown) => {
      if (error instanceof WorkerError) {
        sendText(res, error.status, error.message);
        return;
      }
      onError(error);
      sendText(res, 500, 'Internal error');
    });
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections from pooled clients would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

interface HandlerContext {
  readonly signer: ImgproxySigner | undefined;
  readonly root: string;
  readonly expectedAuthorization: Buffer | undefined;
}

async function handle(req: IncomingMessage, res: ServerResponse, context: HandlerContext): Promise<void> {
  const rawUrl = req.url ?? '/';
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new WorkerError(405, 'Method not allowed');

  const pathOnly = rawUrl.split('?', 1)[0];
  if (pathOnly === '/health') {
    send(res, req, 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }, Buffer.from('{"status":"ok"}'));
    return;
  }
  if (context.expectedAuthorization && !authorizationMatches(req.headers.authorization, context.expectedAuthorization)) {
    throw new WorkerError(403, 'Invalid secret');
  }

  const parsed = parseOrNotFound(rawUrl);
  if (context.signer && !context.signer.verify(parsed.signature, parsed.signedPath)) {
    throw new WorkerError(403, 'Invalid signature');
  }
  const plan = runOrReject(() => planProcessing(parsed.options, parsed.source.extension));
  const source = runOrReject(() => decodeImgproxySource(parsed.source));
  const file = await resolveLocalFile(context.root, source.url);
  if (!file) throw new WorkerError(404, 'Source image is unreachable');
  if (file.stats.size > MAX_SOURCE_BYTES) throw new WorkerError(422, 'Source image file is too big');

  const etag = entityTag(parsed.signedPath, file.stats);
  if (ifNoneMatchMatches(req.headers['if-none-match'], etag)) {
    send(res, req, 304, { ETag: etag, 'Cache-Control': CACHE_CONTROL }, undefined);
    return;
  }

  const input = await fs.readFile(file.path);
  let output: Awaited<ReturnType<typeof processImage>>;
  try {
    output = await processImage(input, plan);
  } catch {
    // sharp's own message may name paths; the caller only needs to know the image was unusable.
    throw new WorkerError(422, 'Source image could not be processed');
  }
  send(
    res,
    req,
    200,
    { 'Content-Type': CONTENT_TYPES[output.format], 'Cache-Control': CACHE_CONTROL, ETag: etag },
    output.body,
  );
}

function parseOrNotFound(rawUrl: string): ImgproxyPath {
  try {
    return parseImgproxyPath(rawUrl);
  } catch (error) {
    // imgproxy answers URLs it cannot parse with 404.
    if (isImgproxyRejection(error)) throw new WorkerError(404, error.message);
    throw error;
  }
}

function runOrReject<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof ProcessingOptionError) throw new WorkerError(422, error.message);
    if (isImgproxyRejection(error)) throw new WorkerError(404, error.message);
    throw error;
  }
}

function authorizationMatches(header: string | undefined, expected: Buffer): boolean {
  const given = Buffer.from(header ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Maps `local:///<path>` under the root the way imgproxy's local transport does (the path is
 * URL-decoded once more), refusing anything that would leave the root, symlinks included.
 */
async function resolveLocalFile(root: string, url: string): Promise<{ path: string; stats: Stats } | undefined> {
  if (!url.startsWith(LOCAL_PREFIX)) return undefined;
  const encodedPath = url.slice(LOCAL_PREFIX.length - 1).split(/[?#]/, 1)[0];
  const decoded = percentDecode(encodedPath)?.toString('utf8');
  if (decoded === undefined || /[\0\\]/.test(decoded) || decoded.split('/').includes('..')) return undefined;

  const candidate = path.resolve(root, `.${decoded}`);
  if (!isInside(root, candidate)) return undefined;
  try {
    const real = await fs.realpath(candidate);
    if (!isInside(root, real)) return undefined;
    const stats = await fs.stat(real);
    return stats.isFile() ? { path: real, stats } : undefined;
  } catch {
    // Missing files and unreadable paths are the same answer: 404.
    return undefined;
  }
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/** Changes when the file or anything in the URL after the signature changes. */
function entityTag(signedPath: string, stats: Stats): string {
  const hash = createHash('sha256')
    .update(`${signedPath}\0${stats.size}\0${stats.mtimeMs}\0${stats.ino}`)
    .digest('base64url')
    .slice(0, 27);
  return `"${hash}"`;
}

function ifNoneMatchMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

function sendText(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(message);
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
  });
  res.end(body);
}

function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  headers: Record<string, string>,
  body: Buffer | undefined,
): void {
  res.writeHead(status, body ? { ...headers, 'Content-Length': body.length } : headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
