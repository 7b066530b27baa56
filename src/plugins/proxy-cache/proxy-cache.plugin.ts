import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Injectable, Optional } from '@nestjs/common';
import { GatewayConfig } from '../../config/gateway-config';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, HANDLED, PRIORITY, type StepOutcome } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import { forwardPlan } from '../../proxy/proxy-terminal';
import type { CacheFill, CacheRequest, CacheResponse, HeadersHook, UpstreamFetch } from './cache-lookup';
import { tenantSourceUrl } from './cache-source';
import { ProxyCache } from './proxy-cache';

/** Request headers that, when a route forwards them upstream, make its answer one client's own. */
const CREDENTIAL_HEADERS = ['cookie', 'authorization', 'x-api-key'];

/**
 * The response cache as a step of the chain (docs/cache.md): on the image routes while
 * `cache.enabled`, and on configured routes with `cache: { ttlSeconds }`. It runs after
 * authentication, IP lists, rate limits and quota, so a hit is a counted, metered request of its
 * tenant, and after the imgproxy rewrite, so the key is the sandboxed, re-signed upstream path.
 * A hit is answered here; a miss that may be shared leads (or joins) a fetch the proxy feeds into
 * the cache, which then writes every client's answer; anything else goes on to the proxy.
 */
@Injectable()
@ChainPlugin()
export class ProxyCachePlugin implements GatewayPlugin {
  readonly name = 'proxy-cache';
  readonly priority = PRIORITY.proxyCache;

  constructor(
    private readonly cache: ProxyCache,
    private readonly config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {}

  compile(route: RouteSpec): CompiledSteps | undefined {
    const cached = route.kind === 'proxy' ? route.cacheTtlSeconds !== undefined : this.config.cache.enabled;
    if (!cached) return undefined;
    const step = new CacheStep(route, this.cache, this.metrics);
    return { access: (ctx: GatewayContext) => step.run(ctx) };
  }
}

/** One request as the step hands it to the cache; the context rides along for the fetch. */
class StepRequest implements CacheRequest {
  constructor(
    readonly ctx: GatewayContext,
    readonly tenantId: string,
    readonly method: string,
    readonly upstreamPath: string,
    readonly requestHeaders: IncomingHttpHeaders,
    private readonly step: CacheStep,
  ) {}

  get ttlSeconds(): number | undefined {
    return this.step.ttlSeconds;
  }

  get keepCookies(): boolean {
    return this.step.configured;
  }

  /** Read when a fetch is stored or purged, not per lookup. */
  get sourceUrl(): string {
    const ctx = this.ctx;
    if (!this.step.configured) return tenantSourceUrl(ctx.imageSource ?? '', this.tenantId);
    const url = ctx.req!.url ?? '/';
    const query = url.indexOf('?');
    return query === -1 ? url : url.slice(0, query);
  }
}

/** The step of one route, compiled once. */
class CacheStep {
  readonly ttlSeconds: number | undefined;
  /** A configured route (not an image route). */
  readonly configured: boolean;
  /**
   * Whose entries a request of an open route (no tenant) makes: `route:<name>`, which no tenant
   * id can be, so they are shared by that route's callers only.
   */
  private readonly namespace: string;
  /**
   * Configured routes key on `<name> <url>`: the same path on two routes (other upstreams, other
   * stripPrefix) is two resources. The image routes key on the upstream path alone, so `/i/*`
   * and `/t/*` share a tenant's renders.
   */
  private readonly keyPrefix: string;
  /** Credential headers this route forwards: a request carrying one is not cached. */
  private readonly credentials: readonly string[];
  private readonly fetch: UpstreamFetch = (fill, request) => lead((request as StepRequest).ctx, fill);

  constructor(
    route: RouteSpec,
    private readonly cache: ProxyCache,
    private readonly metrics: GatewayMetrics | undefined,
  ) {
    this.configured = route.kind === 'proxy';
    this.ttlSeconds = route.cacheTtlSeconds;
    this.namespace = `route:${route.name}`;
    this.keyPrefix = `${route.name} `;
    const plan = forwardPlan(route);
    this.credentials = this.configured ? CREDENTIAL_HEADERS.filter((name) => plan.keep.has(name) && !plan.strip.has(name)) : [];
  }

  run(ctx: GatewayContext): StepOutcome | Promise<StepOutcome> {
    // A WebSocket upgrade has no response object: it is piped, never cached.
    if (ctx.res === undefined) return undefined;
    const req = ctx.req!;
    const headers = req.headers;
    if (this.credentials.length > 0 && this.personal(headers)) {
      this.metrics?.cacheRequest('bypass');
      ctx.cacheStatus = 'BYPASS';
      return undefined;
    }
    const tenantId = ctx.auth?.tenantId ?? this.namespace;
    const path = this.configured ? this.keyPrefix + (req.url ?? '/') : ctx.upstreamPath!;
    const outcome = this.cache.lookup(new StepRequest(ctx, tenantId, req.method ?? 'GET', path, headers, this), this.fetch);
    if (outcome.kind === 'hit') {
      ctx.cacheStatus = 'HIT';
      ctx.header('x-request-id', ctx.requestId);
      ctx.bytesOut = outcome.respond(ctx.res!, ctx.replyHeaders, hookOf(ctx));
      return HANDLED;
    }
    if (outcome.kind === 'pass') {
      ctx.cacheStatus = outcome.status;
      return undefined;
    }
    // A failure before the head rejects: the chain answers it, the same error for every waiter.
    return outcome.response.then((response) => answer(ctx, response));
  }

  private personal(headers: IncomingHttpHeaders): boolean {
    for (let i = 0; i < this.credentials.length; i++) if (headers[this.credentials[i]] !== undefined) return true;
    return false;
  }
}

/** Writes an answer the cache serves from a fetch (or the disk); its bytes count as they go. */
function answer(ctx: GatewayContext, response: CacheResponse): StepOutcome | Promise<StepOutcome> {
  const res = ctx.res!;
  ctx.cacheStatus = response.status;
  ctx.header('x-request-id', ctx.requestId);
  const written = response.respond(res, ctx.replyHeaders, hookOf(ctx), ctx);
  if (typeof written === 'number') {
    ctx.bytesOut = written;
    return HANDLED;
  }
  return written.then(
    () => HANDLED,
    (error: unknown) => {
      // Nothing written yet: the fetch's error is still this client's answer; else the cut was.
      if (res.headersSent) return HANDLED;
      throw error;
    },
  );
}

/** The route's response steps (CORS Vary, header rules) on an answer the cache writes. */
function hookOf(ctx: GatewayContext): HeadersHook | undefined {
  const chain = ctx.compiled!.chain;
  if (!chain.hasResponseSteps) return undefined;
  return (status: number, headers: OutgoingHttpHeaders) => chain.respond(ctx, status, headers);
}

/** This request leads a fetch: the route's proxy runs with the fill in the context's cache slot. */
function lead(ctx: GatewayContext, fill: CacheFill): void {
  ctx.cache = fill;
  let done: void | Promise<void>;
  try {
    done = ctx.compiled!.chain.forward(ctx);
  } catch (error) {
    fill.fail(error);
    return;
  }
  if (done instanceof Promise) done.catch((error: unknown) => fill.fail(error));
}
