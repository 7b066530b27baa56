import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parse as parseQuery, type ParsedUrlQuery } from 'node:querystring';
import { traceContextFor } from '../common/http/request-id';
import { CidrMatcher } from '../common/net/cidr';
import { resolveClientIp } from '../common/net/client-ip';
import type { AdmissionResult } from './admission';
import type { AuthContext } from './caller';
import type { RouteSpec } from './route-spec';

/**
 * What every part of the application may read of a request's state (docs/architecture.md): the
 * GatewayContext below is the one object that holds it, created in the first hook and hung on
 * both the Fastify request and the raw Node request.
 */
export interface RequestState {
  requestId: string;
  clientIp: string;
  startedAt: bigint;
  traceId?: string;
  /** Normalised `traceparent` to send upstream. */
  traceparent?: string;
  auth?: AuthContext;
  /** Route template for metrics and logs (never the raw path). */
  route?: string;
  backend?: string;
  bytesIn?: number;
  bytesOut?: number;
  /** Set once the IP bucket of the pre-authentication path was charged for this request. */
  ipLimited?: boolean;
  /** The admission store's decision (rate part and quota part), for the steps after the rate limit. */
  admission?: AdmissionResult;
  /** Response headers decided before the handler (rate-limit and quota headers). */
  responseHeaders?: Record<string, string | number>;
  /** X-Cache-Status of a request on a cached route (docs/cache.md). */
  cacheStatus?: 'HIT' | 'MISS' | 'BYPASS';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's context (src/gateway/context.ts), created by the first request hook. */
    gw: GatewayContext;
  }
}

/**
 * What authentication reads of a request: its headers, its query (the optional `api_key`) and its
 * state. A Fastify request satisfies it on Nest routes, the gateway context on proxied ones.
 */
export interface AuthenticationRequest {
  readonly headers: IncomingHttpHeaders;
  readonly query?: unknown;
  readonly gw: RequestState;
}

export type RawWithState = IncomingMessage & { gw?: RequestState };

/** What a request keeps of the route it matched (route-table.ts builds it): its spec and its chain. */
export interface MatchedRoute {
  readonly spec: RouteSpec;
  readonly chain: {
    /** Whether the route has response steps (CORS, header rules) for answers others write. */
    readonly hasResponseSteps: boolean;
    respond(ctx: GatewayContext, status: number, headers: OutgoingHttpHeaders): void;
    /** The route's terminal alone (the proxy), for a step that has the upstream fetched on its behalf. */
    forward(ctx: GatewayContext): void | Promise<void>;
  };
}

/** Runs once when the response has ended or the client went away; `aborted` tells which. */
export type EndHook = (ctx: GatewayContext, aborted: boolean) => void;

/**
 * The one home of a request's state (docs/architecture.md): created in the first request hook for
 * every request, Nest routes included (`request.gw`), filled in by the compiled chain's steps for
 * proxied ones. Every field is set in the constructor so all contexts share one hidden class; a
 * step that needs another step's result reads it from its slot here, never from a side table.
 */
export class GatewayContext implements RequestState {
  // Identity, set by the first hook.
  requestId: string;
  clientIp: string;
  startedAt: bigint;
  traceId: string | undefined;
  traceparent: string | undefined;

  // What later steps learn, read by metrics, logs and usage.
  auth: AuthContext | undefined = undefined;
  /** Route name (`proxy`, `signed-proxy`, a configured route's name). */
  route: string | undefined = undefined;
  /** Route template for metrics and logs (`/i/*`), never the raw path. */
  routeTemplate: string | undefined = undefined;
  backend: string | undefined = undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** The client IP's bucket was charged on the pre-authentication path. */
  ipLimited = false;
  /** Headers decided by Nest guards for Nest-routed answers (rate-limit and quota headers). */
  responseHeaders: Record<string, string | number> | undefined = undefined;

  // The compiled chain's slots.
  /** The route matched (and so the chain run): kept for the whole request, even across a reload. */
  compiled: MatchedRoute | undefined = undefined;
  /** Raw request and response of a proxied request (absent for Nest routes until needed). */
  req: IncomingMessage | undefined = undefined;
  res: ServerResponse | undefined = undefined;
  /** Path params of the matched route (`:id`, `*`). */
  params: Record<string, string | undefined> | undefined = undefined;
  /** Path (and query) to request upstream, set by stripPrefix or the imgproxy rewrite. */
  upstreamPath: string | undefined = undefined;
  /** Headers a step adds to the upstream request (imgproxy's Authorization, tenant id). */
  upstreamHeaders: Record<string, string> | undefined = undefined;
  /** Response headers steps add to whatever answer is written (flat name/value pairs). */
  readonly replyHeaders: string[] = [];
  /** Slot of the authentication step for the imgproxy rewrite (the verified, parsed image path). */
  image: unknown = undefined;
  /** Slot of the rate-limiting step for the quota step (the one admission call's result). */
  admission: AdmissionResult | undefined = undefined;
  /** Slot of the cache step for the proxy step (the fill of a coalesced miss). */
  cache: unknown = undefined;
  cacheStatus: 'HIT' | 'MISS' | 'BYPASS' | undefined = undefined;
  /**
   * The image source the sandbox approved (`local:///tenants/<id>/a.jpg`, `https://...`), set by
   * the imgproxy rewrite: what the cache matches purge prefixes against.
   */
  imageSource: string | undefined = undefined;
  /**
   * An image backend answered this very request: its own proxied request, or the fetch it led
   * for the cache. False for a cache hit, and for a request that joined another's fetch (one
   * render served several clients). Usage counts renders from it.
   */
  rendered = false;
  /** Status written by the gateway itself (refusals, 5xx of the proxy), for refunds and logs. */
  gatewayStatus = 0;
  private endHooks: EndHook[] | undefined = undefined;
  private parsedQuery: ParsedUrlQuery | undefined = undefined;

  constructor(requestId: string, clientIp: string, traceId: string | undefined, traceparent: string | undefined) {
    this.requestId = requestId;
    this.clientIp = clientIp;
    this.startedAt = process.hrtime.bigint();
    this.traceId = traceId;
    this.traceparent = traceparent;
  }

  /** The request's headers: with `gw` and `query`, what an authentication step reads of a request. */
  get headers(): IncomingHttpHeaders {
    return this.req!.headers;
  }

  /** The context itself, so that code written against `request.gw` takes a context directly. */
  get gw(): GatewayContext {
    return this;
  }

  /** The query string, parsed on first use only (most proxied requests never need it). */
  get query(): ParsedUrlQuery {
    if (this.parsedQuery === undefined) {
      const url = this.req?.url ?? '';
      const mark = url.indexOf('?');
      this.parsedQuery = mark === -1 ? {} : parseQuery(url.slice(mark + 1));
    }
    return this.parsedQuery;
  }

  /** Adds a response header for whatever answer is written (refusal, cache hit or proxied). */
  header(name: string, value: string): void {
    this.replyHeaders.push(name, value);
  }

  /** Registers work for the end of the response (usage, upstream abort); run once, in order. */
  onEnd(hook: EndHook): void {
    (this.endHooks ??= []).push(hook);
  }

  /**
   * Called once by the request observer when the response closed. A hook that throws is reported
   * and the others still run: one failing accountant must not skip the rest.
   */
  runEndHooks(aborted: boolean, onError: (error: unknown) => void): void {
    const hooks = this.endHooks;
    if (hooks === undefined) return;
    this.endHooks = undefined;
    for (let i = 0; i < hooks.length; i++) {
      try {
        hooks[i](this, aborted);
      } catch (error) {
        onError(error);
      }
    }
  }
}

/** Makes span and trace ids (a pool of random hex, see RandomHexPool). */
export interface TraceIds {
  span(): string;
  trace(): string;
}

/**
 * The context of a request as it arrives: its id, the client address by the trusted-proxy rule
 * (docs/proxy-and-backends.md) and its trace context. Used by the first request hook and by the
 * WebSocket entry, which Fastify never sees.
 */
export function contextFor(req: IncomingMessage, requestId: string, trustedProxies: CidrMatcher, ids: TraceIds): GatewayContext {
  const trace = traceContextFor(req.headers.traceparent, ids);
  const clientIp = trustedProxies.size === 0 ? socketAddressOf(req) : resolveClientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustedProxies);
  const ctx = new GatewayContext(requestId, clientIp, trace.traceId, trace.traceparent);
  ctx.req = req;
  return ctx;
}

const SOCKET_ADDRESS = Symbol('gw.socketAddress');
const NO_PROXIES = new CidrMatcher([]);

/**
 * Without trusted proxies the client address is the socket's, which a keep-alive connection keeps
 * for all its requests: normalised once per connection rather than once per request.
 */
function socketAddressOf(req: IncomingMessage): string {
  const socket = req.socket as IncomingMessage['socket'] & { [SOCKET_ADDRESS]?: string };
  let address = socket[SOCKET_ADDRESS];
  if (address === undefined) socket[SOCKET_ADDRESS] = address = resolveClientIp(socket.remoteAddress, undefined, NO_PROXIES);
  return address;
}
