import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { Injectable, Logger, Optional } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { BackendRegistry, DEFAULT_POOL } from '../backends/backend-registry.service';
import { GatewayException } from '../common/errors/gateway.exception';
import type { RequestState } from '../common/http/request-context';
import { CidrMatcher, normalizeAddress } from '../common/net/cidr';
import { GatewayConfig } from '../config/gateway-config';
import { requestFields } from '../logging/logging.options';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import type { BackendLease } from './backend-state/backend-pool';
import { backoffDelay } from './backend-state/backoff';
import { ByteCounter } from './byte-counter';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './proxy-headers';
import { UpstreamClients } from './upstream-clients';
import { classifyUpstreamAnswer, classifyUpstreamError, isReplayable, retryAfterMs, type UpstreamFailureKind } from './upstream-failure';

export interface ForwardOptions {
  /** Backend pool; `imgproxy` by default. */
  pool?: string;
  /** Path and query to request on the backend, starting with `/` (already rewritten and signed). */
  upstreamPath: string;
  /** Added to the upstream request last, e.g. imgproxy's `Authorization: Bearer <secret>`. */
  extraHeaders?: Readonly<Record<string, string>>;
}

/** Statuses whose responses never carry a body. */
const BODYLESS_STATUS = new Set([204, 304]);

type Outcome = { kind: UpstreamFailureKind | 'busy'; retryAfter?: number };

/**
 * The streaming proxy (docs/proxy-and-backends.md): chooses a backend from the pool's balancer, sends the request
 * over that backend's keep-alive pool and streams the answer back, both bodies counted on the
 * way. GET and HEAD fail over to another backend after a connect error, a timeout before the
 * response headers, a malformed reply, or a 429; every attempt reports one outcome to the circuit
 * breaker (upstream-failure.ts says which).
 *
 * Callers hand in the upstream path and headers: the `/i/*` route forwards its path unchanged,
 * the signed route (`/t/*`) rewrites and re-signs it first.
 */
@Injectable()
export class ProxyService {
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
   * Answers the request with the backend's response. Resolves when the response has been sent
   * completely (or the client went away), so interceptors that run after it see final byte
   * counts in `request.gw`.
   */
  async forward(request: FastifyRequest, reply: FastifyReply, options: ForwardOptions): Promise<unknown> {
    const gw = request.gw;
    gw.bytesIn = 0;
    gw.bytesOut = 0;
    const pool = this.registry.pool(options.pool ?? DEFAULT_POOL);
    if (!pool) throw new GatewayException('no_healthy_backend');

    const raw = request.raw;
    const method = raw.method ?? 'GET';
    const body = this.requestBody(request, gw);
    // Without trusted proxies the client address already is the normalised socket address.
    const peerAddress = this.trustedProxies.size === 0 ? gw.clientIp : (normalizeAddress(raw.socket.remoteAddress ?? '') ?? gw.clientIp);
    const headers = upstreamRequestHeaders(raw.headers, {
      requestId: gw.requestId,
      clientIp: gw.clientIp,
      traceparent: gw.traceparent,
      peerAddress,
      peerTrusted: this.trustedProxies.size > 0 && this.trustedProxies.matches(peerAddress),
      protocol: (raw.socket as TLSSocket).encrypted ? 'https' : 'http',
      extra: options.extraHeaders,
    });

    // A client that goes away cancels whatever is under way upstream (connect, wait, body).
    const abort = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });

    const { retries, retryBackoffMs, retryBackoffCapMs } = this.config.proxy;
    const attempts = isReplayable(method) && body === undefined ? retries + 1 : 1;
    const tried = new Set<string>();
    let last: Outcome | undefined;

    for (let attempt = 0; attempt < attempts; attempt++) {
      if (last && last.kind !== 'busy') {
        const delay = backoffDelay(attempt - 1, { baseMs: retryBackoffMs, capMs: retryBackoffCapMs });
        if (delay > 0 && !(await sleep(delay, true, { signal: abort.signal }).catch(() => false))) return undefined;
      }
      const lease = pool.choose({ clientIp: gw.clientIp, exclude: tried });
      if (!lease) {
        if (last === undefined) throw new GatewayException('no_healthy_backend');
        break;
      }
      tried.add(lease.backend.id);
      gw.backend = lease.backend.name;
      const client = this.clients.for(lease.backend);
      const started = process.hrtime.bigint();
      let response: Dispatcher.ResponseData;
      try {
        response = await client.pool.request({
          path: client.basePath + options.upstreamPath,
          method: method as Dispatcher.HttpMethod,
          headers,
          body,
          signal: abort.signal,
        });
      } catch (error) {
        this.observe(lease, started);
        lease.release();
        // Our own refusal of the request body (too large) is the client's doing, not the backend's.
        if (error instanceof GatewayException) throw error;
        const kind = classifyUpstreamError(error, abort.signal.aborted);
        if (kind === 'aborted') return undefined;
        this.failed(lease);
        this.metrics?.upstreamFailed(lease.backend.name, kind);
        this.logger.warn(
          { ...requestFields(gw), backend: lease.backend.name, attempt, kind, code: (error as { code?: string }).code },
          `upstream ${kind} failure on ${lease.backend.name}`,
        );
        last = { kind };
        if (attempt + 1 < attempts) this.metrics?.retried(lease.backend.name);
        continue;
      }
      this.observe(lease, started);

      if (classifyUpstreamAnswer(response.statusCode) === 'busy') {
        // imgproxy's queue is full: shift load away for a while, not a failure (docs/proxy-and-backends.md).
        const retryAfter = retryAfterMs(response.headers['retry-after']);
        lease.backPressure(retryAfter);
        lease.release();
        response.body.dump().catch(() => undefined);
        last = { kind: 'busy', retryAfter };
        if (attempt + 1 < attempts) this.metrics?.retried(lease.backend.name);
        continue;
      }
      this.succeeded(lease);
      return this.respond(request, reply, response, lease, gw);
    }
    throw this.finalError(last);
  }

  /** The body to send upstream, counted into `bytesIn` and bounded; undefined when there is none. */
  private requestBody(request: FastifyRequest, gw: RequestState): Readable | undefined {
    const headers = request.raw.headers;
    const length = headers['content-length'];
    const chunked = headers['transfer-encoding'] !== undefined;
    if (!chunked && (length === undefined || length === '0')) return undefined;
    const max = this.config.proxy.maxRequestBodyBytes;
    if (length !== undefined && Number(length) > max) throw new GatewayException('payload_too_large');
    const source = request.body as Readable | undefined;
    if (!source || typeof source.pipe !== 'function') return undefined;
    const counter = new ByteCounter((n) => (gw.bytesIn = n), max, () => new GatewayException('payload_too_large'));
    source.on('error', (error) => counter.destroy(error));
    return source.pipe(counter);
  }

  private respond(request: FastifyRequest, reply: FastifyReply, response: Dispatcher.ResponseData, lease: BackendLease, gw: RequestState): unknown {
    const copied = downstreamResponseHeaders(response.headers as IncomingHttpHeaders);
    reply.status(response.statusCode);
    reply.headers(copied);
    if (gw.responseHeaders) reply.headers(gw.responseHeaders);

    if (request.raw.method === 'HEAD' || BODYLESS_STATUS.has(response.statusCode)) {
      response.body.dump().catch(() => undefined).finally(() => lease.release());
      return reply.send();
    }

    const upstream = response.body;
    const out = new ByteCounter((n) => (gw.bytesOut = n));
    upstream.on('error', (error) => {
      // Before the first byte reaches the client the error can still be a clean 502/504, so
      // the backend's headers must not leak onto the error response.
      // Fastify has already copied them onto the raw response when it started piping.
      if (!reply.raw.headersSent) {
        for (const name of Object.keys(copied)) {
          reply.removeHeader(name);
          reply.raw.removeHeader(name);
        }
      }
      const timeout = (error as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT';
      if (!reply.raw.destroyed) {
        this.logger.warn({ ...requestFields(gw), backend: lease.backend.name, code: (error as { code?: string }).code }, 'upstream body failed');
      }
      out.destroy(new GatewayException(timeout ? 'gateway_timeout' : 'bad_gateway'));
    });
    // Released when the body is done or abandoned; destroying ours (client gone) cancels upstream.
    out.once('close', () => {
      if (!upstream.destroyed) upstream.destroy();
      lease.release();
    });
    upstream.pipe(out);
    return reply.send(out);
  }

  private finalError(last: Outcome | undefined): GatewayException {
    if (last?.kind === 'busy') {
      // Every backend that could take it is saturated. 429 in this API means "your own limit"
      // (rate_limited, quota_exceeded); a full backend queue is the service's state: 503.
      const seconds = Math.max(1, Math.ceil((last.retryAfter ?? 1000) / 1000));
      return new GatewayException('unavailable', 'The image backends are busy; retry shortly.', { retryAfter: seconds }, { 'retry-after': seconds });
    }
    return new GatewayException(last?.kind === 'timeout' ? 'gateway_timeout' : 'bad_gateway');
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
