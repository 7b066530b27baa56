import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { connect as connectTcp, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type TLSSocket, connect as connectTls } from 'node:tls';
import { Injectable, Logger, Optional } from '@nestjs/common';
import type { Dispatcher } from 'undici';
import { BackendRegistry } from '../upstreams/backends/backend-registry.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { refusals } from '../common/errors/refusals';
import { CidrMatcher, normalizeAddress } from '../common/net/cidr';
import { GatewayConfig } from '../config/gateway-config';
import type { GatewayContext } from '../gateway/context';
import { writeRefusal, writeToSocket } from '../gateway/refusal-writer';
import { requestFields } from '../logging/logging.options';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import type { BackendLease } from '../upstreams/backend-state/backend-pool';
import { ClientAbort } from './client-abort';
import { backoffDelay } from '../upstreams/backend-state/backoff';
import type { ResponseFill } from './response-fill';
import { feedFill } from './feed-fill';
import { ByteCounter } from './byte-counter';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './proxy-headers';
import { UpstreamClients } from './upstream-clients';
import { classifyUpstreamAnswer, classifyUpstreamError, retryAfterMs, type UpstreamFailureKind } from './upstream-failure';

/** How one route forwards, resolved once when the route is compiled. */
export interface ForwardPlan {
  /** Upstream (pool) name. */
  readonly upstream: string;
  /** Failover attempts after the first, for requests without a body on idempotent methods. */
  readonly retries: number;
  /** Until response headers, and the longest silence while a body streams; config defaults when unset. */
  readonly timeoutMs?: number;
  /** Largest request body forwarded: 413 before the upstream is asked when declared, on the stream otherwise. */
  readonly maxBodyBytes: number;
  /** Default-stripped request headers this route forwards after all (cookie for applications). */
  readonly keep: ReadonlySet<string>;
  /** Request headers never forwarded on this route. */
  readonly strip: ReadonlySet<string>;
  /** Request headers set on every upstream request of the route. */
  readonly set: Readonly<Record<string, string>>;
  /** Pass the upstream's Set-Cookie on (an application's sessions; never an image backend's). */
  readonly keepCookies: boolean;
  /** The upstream's answers are renders (the image routes' imgproxy pool): `ctx.rendered`. */
  readonly renders: boolean;
}

/** Methods that may be replayed on another backend (when they carry no body). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Statuses whose responses never carry a body. */
const BODYLESS_STATUS = new Set([204, 304]);

type Outcome = { kind: UpstreamFailureKind | 'busy'; retryAfter?: number };

/**
 * The streaming forwarder at the end of every route's chain: picks a backend from the route's
 * upstream, sends the request over that backend's keep-alive pool and streams the answer back to
 * the raw response, counting bytes in the data handlers (no Transform per response). Idempotent
 * requests without a body fail over to another backend after a connect error, a timeout before
 * the response headers, or a 429 (back-pressure). Any HTTP answer proves the backend is reachable:
 * only transport failures and timeouts count against its circuit, so a tenant whose source makes
 * imgproxy answer 5xx cannot eject a backend for everyone (docs/proxy-and-backends.md).
 */
@Injectable()
export class Forwarder {
  private readonly logger = new Logger('Proxy');
  private readonly trustedProxies: CidrMatcher;

  constructor(
    private readonly registry: BackendRegistry,
    private readonly clients: UpstreamClients,
    private readonly config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    this.trustedProxies = new CidrMatcher(config.server.trustedProxies);
  }

  /**
   * Answers the request on `ctx.res` with an upstream response; rejects with the refusal to write.
   *
   * With `fill` (the cache step made this request lead a fetch), the answer goes into the fill
   * instead, and the cache writes it to every client waiting on it, this one included: the same
   * backend choice, failover, timeouts and circuit reporting, and a rejection fails the fill. The
   * fetch is cancelled by the fill's signal (nobody wants the body any more), not by this client
   * leaving: the others, or the cache, may still want it.
   */
  async forward(ctx: GatewayContext, plan: ForwardPlan, fill?: ResponseFill): Promise<void> {
    const req = ctx.req!;
    const pool = this.registry.pool(plan.upstream);
    if (!pool) throw refusals.noHealthyBackend();
    const method = req.method ?? 'GET';
    const body = this.requestBody(ctx, plan);
    const headers = this.upstreamHeaders(ctx, plan);

    let signal: AbortSignal | ClientAbort;
    if (fill === undefined) {
      // A client that goes away cancels whatever is under way upstream (connect, wait, body).
      const abort = new ClientAbort();
      signal = abort;
      ctx.onEnd((_ctx, aborted) => {
        if (aborted) abort.abort();
      });
    } else signal = fill.signal;

    const { retryBackoffMs, retryBackoffCapMs, headersTimeoutMs, bodyIdleTimeoutMs } = this.config.proxy;
    const attempts = IDEMPOTENT.has(method) && body === undefined ? plan.retries + 1 : 1;
    const path = ctx.upstreamPath ?? req.url ?? '/';
    // Backends already tried, for failover; most requests succeed at once and never need it.
    let tried: Set<string> | undefined;
    let last: Outcome | undefined;

    for (let attempt = 0; attempt < attempts; attempt++) {
      if (last && last.kind !== 'busy') {
        const delay = backoffDelay(attempt - 1, { baseMs: retryBackoffMs, capMs: retryBackoffCapMs });
        if (delay > 0) await sleep(delay);
        if (signal.aborted) return;
      }
      const lease = pool.choose({ clientIp: ctx.clientIp, exclude: tried });
      if (!lease) {
        if (last === undefined) throw refusals.noHealthyBackend();
        break;
      }
      if (attempts > 1) (tried ??= new Set<string>()).add(lease.backend.id);
      ctx.backend = lease.backend.name;
      const client = this.clients.for(lease.backend);
      const started = process.hrtime.bigint();
      let response: Dispatcher.ResponseData;
      try {
        response = await client.pool.request({
          path: client.basePath + path,
          method: method as Dispatcher.HttpMethod,
          headers,
          body,
          signal,
          headersTimeout: plan.timeoutMs ?? headersTimeoutMs,
          bodyTimeout: plan.timeoutMs ?? bodyIdleTimeoutMs,
        });
      } catch (error) {
        this.observe(lease, started);
        lease.release();
        // Our own refusal of the request body (too large) is the client's doing, not the backend's.
        if (error instanceof GatewayException) throw error;
        const kind = classifyUpstreamError(error, signal.aborted);
        if (kind === 'aborted') return;
        this.failed(lease);
        this.metrics?.upstreamFailed(lease.backend.name, kind);
        this.logger.warn(
          { ...requestFields(ctx), backend: lease.backend.name, attempt, kind, code: (error as { code?: string }).code },
          `upstream ${kind} failure on ${lease.backend.name}`,
        );
        last = { kind };
        if (attempt + 1 < attempts) this.metrics?.retried(lease.backend.name);
        continue;
      }
      this.observe(lease, started);

      if (classifyUpstreamAnswer(response.statusCode) === 'busy') {
        // The backend's queue is full: shift load away for a while, not a failure.
        const retryAfter = retryAfterMs(response.headers['retry-after']);
        lease.backPressure(retryAfter);
        lease.release();
        response.body.dump().catch(() => undefined);
        last = { kind: 'busy', retryAfter };
        if (attempt + 1 < attempts) this.metrics?.retried(lease.backend.name);
        continue;
      }
      this.succeeded(lease);
      ctx.rendered = plan.renders;
      if (fill === undefined) this.respond(ctx, plan, response, lease, signal);
      else this.feed(ctx, fill, response, lease);
      return;
    }
    throw finalError(last);
  }

  /**
   * Pipes an admitted WebSocket upgrade to a backend: the upgrade request is rebuilt with the
   * forwarding headers (credentials the gateway consumed stripped, `Upgrade`/`Connection` kept),
   * written on a new connection to the backend, and from there both sockets are piped, bytes
   * counted each way. The backend's own answer (101, or a refusal) passes through unchanged.
   */
  upgrade(ctx: GatewayContext, plan: ForwardPlan, socket: Duplex, head: Buffer): void {
    const req = ctx.req!;
    const lease = this.registry.pool(plan.upstream)?.choose({ clientIp: ctx.clientIp });
    if (!lease) {
      writeToSocket(socket, ctx, refusals.noHealthyBackend());
      ctx.runEndHooks(true, () => undefined);
      return;
    }
    ctx.backend = lease.backend.name;
    const target = new URL(lease.backend.url);
    const secure = target.protocol === 'https:' || target.protocol === 'wss:';
    const port = Number(target.port || (secure ? 443 : 80));
    const headers = this.upstreamHeaders(ctx, plan);
    headers.host = target.host;
    headers.connection = 'Upgrade';
    headers.upgrade = String(req.headers.upgrade ?? 'websocket');
    const path = target.pathname.replace(/\/+$/, '') + (ctx.upstreamPath ?? req.url ?? '/');
    const lines = [`${req.method ?? 'GET'} ${path} HTTP/1.1`];
    for (const name in headers) {
      const value = headers[name];
      for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
    }
    const upstream: Socket = secure
      ? connectTls({ host: target.hostname, port, servername: target.hostname })
      : connectTcp({ host: target.hostname, port });
    upstream.setTimeout(this.config.proxy.connectTimeoutMs);
    let connected = false;
    let ended = false;
    const end = (aborted: boolean) => {
      if (ended) return;
      ended = true;
      socket.destroy();
      upstream.destroy();
      lease.release();
      ctx.runEndHooks(aborted, (error) => this.logger.error({ ...requestFields(ctx), err: (error as Error).message }, 'websocket accounting failed'));
    };
    upstream.once(secure ? 'secureConnect' : 'connect', () => {
      connected = true;
      upstream.setTimeout(0);
      this.succeeded(lease);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.on('data', (chunk: Buffer) => (ctx.bytesOut += chunk.length));
      socket.on('data', (chunk: Buffer) => (ctx.bytesIn += chunk.length));
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.once('timeout', () => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })));
    upstream.once('error', (error: Error & { code?: string }) => {
      if (!connected) {
        this.failed(lease);
        this.logger.warn({ ...requestFields(ctx), backend: lease.backend.name, code: error.code }, `websocket upstream failed on ${lease.backend.name}`);
        writeToSocket(socket, ctx, new GatewayException(classifyUpstreamError(error, false) === 'timeout' ? 'gateway_timeout' : 'bad_gateway'));
      }
      end(!connected);
    });
    upstream.once('close', () => end(false));
    socket.once('close', () => end(!connected));
    socket.once('error', () => end(true));
  }

  /** The body to send upstream, counted into `bytesIn` and bounded; undefined when there is none. */
  private requestBody(ctx: GatewayContext, plan: ForwardPlan): Readable | undefined {
    const req = ctx.req!;
    const length = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (!chunked && (length === undefined || length === '0')) return undefined;
    if (plan.maxBodyBytes === 0) throw new GatewayException('payload_too_large', 'This route takes no request body.');
    if (length !== undefined && Number(length) > plan.maxBodyBytes) throw new GatewayException('payload_too_large');
    const counter = new ByteCounter((n) => (ctx.bytesIn = n), plan.maxBodyBytes, () => new GatewayException('payload_too_large'));
    req.on('error', (error) => counter.destroy(error));
    return req.pipe(counter);
  }

  private upstreamHeaders(ctx: GatewayContext, plan: ForwardPlan): Record<string, string | string[]> {
    const req = ctx.req!;
    // Without trusted proxies the client address already is the normalised socket address.
    const peerAddress = this.trustedProxies.size === 0 ? ctx.clientIp : (normalizeAddress(req.socket.remoteAddress ?? '') ?? ctx.clientIp);
    const headers = upstreamRequestHeaders(req.headers, {
      requestId: ctx.requestId,
      clientIp: ctx.clientIp,
      traceparent: ctx.traceparent,
      peerAddress,
      peerTrusted: this.trustedProxies.size > 0 && this.trustedProxies.matches(peerAddress),
      protocol: (req.socket as TLSSocket).encrypted ? 'https' : 'http',
      extra: ctx.upstreamHeaders,
      keep: plan.keep,
      strip: plan.strip,
    });
    for (const name in plan.set) headers[name] = plan.set[name];
    return headers;
  }

  private respond(ctx: GatewayContext, plan: ForwardPlan, response: Dispatcher.ResponseData, lease: BackendLease, signal: { readonly aborted: boolean }): void {
    const res = ctx.res!;
    const status = response.statusCode;
    const headers: OutgoingHttpHeaders = downstreamResponseHeaders(response.headers as IncomingHttpHeaders, { keepCookies: plan.keepCookies });
    // On a cached route the cache passed this one through (BYPASS, or a MISS it could not share);
    // set before the response steps, which see it as on the answers the cache writes.
    if (ctx.cacheStatus !== undefined) headers['x-cache-status'] = ctx.cacheStatus;
    ctx.compiled?.chain.respond(ctx, status, headers);
    const decided = ctx.replyHeaders;
    for (let i = 0; i < decided.length; i += 2) headers[decided[i]] = decided[i + 1];
    headers['x-request-id'] = ctx.requestId;
    const upstream = response.body;

    if (ctx.req!.method === 'HEAD' || BODYLESS_STATUS.has(status)) {
      res.writeHead(status, headers);
      res.end();
      upstream.dump().catch(() => undefined).finally(() => lease.release());
      return;
    }
    // The status line waits for the first body byte: a backend that sends headers and then
    // nothing (or fails) before it still gets the client a clean 504/502 instead of a cut body.
    let started = false;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      res.off('drain', resume);
      lease.release();
    };
    const resume = () => upstream.resume();
    upstream.on('data', (chunk: Buffer) => {
      if (!started) {
        started = true;
        res.writeHead(status, headers);
      }
      ctx.bytesOut += chunk.length;
      if (!res.write(chunk)) upstream.pause();
    });
    res.on('drain', resume);
    upstream.on('end', () => {
      if (!started) res.writeHead(status, headers);
      res.end();
      release();
    });
    upstream.on('error', (error: Error & { code?: string }) => {
      release();
      if (signal.aborted || res.destroyed) return;
      this.logger.warn({ ...requestFields(ctx), backend: lease.backend.name, code: error.code }, 'upstream body failed');
      if (!started) writeRefusal(ctx, new GatewayException(error.code === 'UND_ERR_BODY_TIMEOUT' ? 'gateway_timeout' : 'bad_gateway'));
      // Once the status line is out, the only honest signal left is to cut the connection.
      else res.destroy();
    });
    ctx.onEnd((_ctx, aborted) => {
      if (aborted && !upstream.destroyed) upstream.destroy();
      release();
    });
  }

  /**
   * A fetch the cache leads: the answer goes into the fill (feedFill keeps the first-byte rule:
   * the head goes out with the first body byte), the backend is released when its body is done.
   */
  private feed(ctx: GatewayContext, fill: ResponseFill, response: Dispatcher.ResponseData, lease: BackendLease): void {
    const upstream = response.body;
    upstream.once('error', (error: Error & { code?: string }) => {
      if (fill.signal.aborted || error.code === 'UND_ERR_ABORTED') return;
      this.logger.warn({ ...requestFields(ctx), backend: lease.backend.name, code: error.code }, 'upstream body failed');
    });
    void feedFill(fill, response).then(() => lease.release());
  }

  private observe(lease: BackendLease, started: bigint): void {
    this.metrics?.upstreamObserved(lease.backend.name, Number(process.hrtime.bigint() - started) / 1e9);
  }

  private failed(lease: BackendLease): void {
    if (lease.failed() === 'open') {
      this.logger.warn({ backend: lease.backend.name }, `circuit opened for ${lease.backend.name}`);
      this.metrics?.circuitState(lease.backend.name, 'open');
    }
  }

  private succeeded(lease: BackendLease): void {
    if (lease.succeeded() === 'closed') {
      this.logger.log({ backend: lease.backend.name }, `circuit closed for ${lease.backend.name}`);
      this.metrics?.circuitState(lease.backend.name, 'closed');
    }
  }
}

function finalError(last: Outcome | undefined): GatewayException {
  if (last?.kind === 'busy') {
    // Every backend that could take it is saturated: the service's state, not the caller's limit.
    const seconds = Math.max(1, Math.ceil((last.retryAfter ?? 1000) / 1000));
    return refusals.unavailable(seconds, 'The backends are busy; retry shortly.');
  }
  return last?.kind === 'timeout' ? refusals.gatewayTimeout() : refusals.badGateway();
}
