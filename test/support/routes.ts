import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { RawResponse, TestBackend } from './http-backends';

/**
 * Helpers of the route specs (test/routes-*.e2e-spec.ts): configuration files an operator would
 * write, and requests fetch() cannot make (chunked bodies paced by the test, exact paths).
 */

/** A temporary directory holding one gateway YAML file; `write` replaces it, `remove` cleans up. */
export class ConfigFile {
  readonly dir = mkdtempSync(join(tmpdir(), 'igw-routes-'));
  readonly path = join(this.dir, 'gateway.yaml');

  constructor(content: Record<string, unknown> | string) {
    this.write(content);
  }

  /** Replaced the way an editor saves: a new file renamed over the old one. */
  write(content: Record<string, unknown> | string): void {
    const text = typeof content === 'string' ? content : stringify(content);
    const next = `${this.path}.tmp`;
    writeFileSync(next, text);
    renameSync(next, this.path);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A configuration file mounted the way Kubernetes mounts a ConfigMap: `gateway.yaml` is a symlink
 * to `..data/gateway.yaml`, `..data` a symlink to a versioned directory, and an update writes a
 * new directory and swaps `..data` by rename (kubelet's atomic writer). The file's own name never
 * sees an event; only `..data` does.
 */
export class MountedConfigFile {
  readonly dir = mkdtempSync(join(tmpdir(), 'igw-configmap-'));
  readonly path = join(this.dir, 'gateway.yaml');
  private version = 0;

  constructor(content: Record<string, unknown>) {
    this.write(content);
    symlinkSync(join('..data', 'gateway.yaml'), this.path);
  }

  write(content: Record<string, unknown>): void {
    const previous = this.version > 0 ? join(this.dir, `..v${this.version}`) : undefined;
    const next = `..v${++this.version}`;
    mkdirSync(join(this.dir, next));
    writeFileSync(join(this.dir, next, 'gateway.yaml'), stringify(content));
    symlinkSync(next, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (previous) rmSync(previous, { recursive: true, force: true });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `{ name, url, weight }` entries of an upstream's `backends`. */
export function backendsOf(...backends: (TestBackend | { backend: TestBackend; weight: number })[]) {
  return backends.map((entry) =>
    'backend' in entry ? { name: entry.backend.name, url: entry.backend.url, weight: entry.weight } : { name: entry.name, url: entry.url, weight: 1 },
  );
}

export interface ChunkedOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Written one after the other, `pauseMs` apart, without a Content-Length. */
  chunks: Buffer[];
  pauseMs?: number;
}

/**
 * A chunked request whose body the test paces. Resolves with the answer, or with status 0 when
 * the gateway cut the connection without one.
 */
export function chunkedRequest(baseUrl: string, path: string, options: ChunkedOptions): Promise<RawResponse & { writeFailed: boolean }> {
  const url = new URL(baseUrl);
  return new Promise((resolve) => {
    let writeFailed = false;
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: options.method ?? 'POST', path, headers: { 'content-type': 'application/octet-stream', ...options.headers }, agent: false },
      (res) => {
        const body: Buffer[] = [];
        res.on('data', (chunk: Buffer) => body.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(body), writeFailed }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(body), writeFailed }));
      },
    );
    req.on('error', () => {
      writeFailed = true;
      resolve({ status: 0, headers: {}, body: Buffer.alloc(0), writeFailed });
    });
    const chunks = [...options.chunks];
    const next = () => {
      const chunk = chunks.shift();
      if (chunk === undefined) {
        req.end();
        return;
      }
      req.write(chunk, (error) => {
        if (error) writeFailed = true;
        else setTimeout(next, options.pauseMs ?? 10);
      });
    };
    next();
  });
}

/** The JSON error body of a refusal. */
export function errorOf(response: RawResponse): { code: string; message: string; requestId: string; [extra: string]: unknown } {
  return (JSON.parse(response.body.toString()) as { error: { code: string; message: string; requestId: string } }).error;
}
