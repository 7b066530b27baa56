import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export type BackendHandler = (req: IncomingMessage, res: ServerResponse, backend: TestBackend) => void;

export interface TestBackendOptions {
  name?: string;
  /** Answers every request except `GET /health`; default: 200 with the backend's name as body. */
  handler?: BackendHandler;
  /** Fixed port, e.g. to bring a backend back on the address the gateway knows. */
  port?: number;
  /** Loopback address to listen on (127.0.0.2 and up are distinct hosts to DNS discovery); default 127.0.0.1. */
  host?: string;
}

/**
 * A real node:http server standing in for an imgproxy backend: records what reached it, answers
 * `/health` according to `healthy`, and can be stopped hard (every socket destroyed) to play a
 * backend that dies. Reusable by any e2e spec that needs an upstream.
 */
export class TestBackend {
  readonly name: string;
  readonly requests: RecordedRequest[] = [];
  /** Image requests only (health checks excluded). */
  hits = 0;
  healthChecks = 0;
  failedHealthChecks = 0;
  healthy = true;
  handler: BackendHandler;
  /** Requests whose connection closed before the response finished (client abort seen here). */
  readonly abandoned: RecordedRequest[] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;
  readonly host: string;

  constructor(options: TestBackendOptions = {}) {
    this.name = options.name ?? 'backend';
    this.handler = options.handler ?? ((_req, res) => res.end(this.name));
    this.port = options.port ?? 0;
    this.host = options.host ?? '127.0.0.1';
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Image requests that reached this backend, newest last. */
  get imageRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.url !== '/health');
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const record = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
      if (req.method === 'GET' && req.url === '/health') {
        this.healthChecks++;
        if (!this.healthy) this.failedHealthChecks++;
        res.statusCode = this.healthy ? 200 : 503;
        res.end(this.healthy ? 'ok' : 'down');
        return;
      }
      this.requests.push(record);
      this.hits++;
      res.on('close', () => {
        if (!res.writableFinished) this.abandoned.push(record);
      });
      this.handler(req, res, this);
    });
    server.keepAliveTimeout = 5_000;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.listen(this.port, this.host);
    await once(server, 'listening');
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Dies like a crashed process: listener closed, every connection cut. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

export async function startBackend(options: TestBackendOptions = {}): Promise<TestBackend> {
  return new TestBackend(options).start();
}

/** Echoes the request body back with its content type (request and response both stream). */
export const echoHandler: BackendHandler = (req, res) => {
  res.setHeader('content-type', req.headers['content-type'] ?? 'application/octet-stream');
  req.pipe(res);
};

/** `bytes` of a repeating pattern, written in 64 KiB chunks with back-pressure respected. */
export function largeBodyHandler(bytes: number): BackendHandler {
  const chunk = Buffer.alloc(64 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789');
  return (_req, res) => {
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', String(bytes));
    let left = bytes;
    const write = () => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!res.write(piece)) {
          res.once('drain', write);
          return;
        }
      }
      res.end();
    };
    write();
  };
}

/** Polls `probe` until it returns true, failing with `what` after `timeoutMs`. */
export async function waitFor(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A request with exactly the given path and headers (fetch would normalise the path and refuses
 * hop-by-hop headers), on a fresh connection.
 */
export async function rawRequest(
  baseUrl: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<RawResponse> {
  const { request } = await import('node:http');
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: options.method ?? 'GET', path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
