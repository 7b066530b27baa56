import type { GatewayConfig } from '../config/gateway-config';
import type {
  CorsConfig,
  HeaderRulesConfig,
  ImageRouteConfig,
  RouteConfig,
  RouteMethod,
  RouteRateLimitConfig,
} from '../config/routes.config';

/** The pool the image routes proxy to; fed by BACKENDS and the backends table. */
export const IMGPROXY_UPSTREAM = 'imgproxy';
export const HEADER_MODE_ROUTE = 'proxy';
export const SIGNED_MODE_ROUTE = 'signed-proxy';
/** Scope an API key needs to fetch images (docs/tenants-and-keys.md). */
export const IMAGE_READ_SCOPE = 'images:read';

export type RouteAuth = 'api-key' | 'jwt' | 'none' | 'signed-url';

export interface WindowLimits {
  readonly perMinute?: number;
  readonly perHour?: number;
  readonly burst?: number;
}

/** A route's own limits: a capacity bucket shared by every caller and/or a bucket per caller. */
export interface RouteLimits {
  /** Name of the capacity bucket (`proxy` for both image routes, else the route's name). */
  readonly bucket: string;
  readonly capacity?: WindowLimits;
  readonly perCaller?: WindowLimits;
  readonly policy: 'exact' | 'local-sync';
}

/**
 * One route as the compiler sees it: YAML routes and the built-in image routes normalised to one
 * shape, every default filled in, so plugins read plain values.
 */
export interface RouteSpec {
  readonly name: string;
  /** find-my-way template (`/i/*`, `/api/users/:id`). */
  readonly path: string;
  /** Allowed methods; HEAD is implied by GET. */
  readonly methods: readonly RouteMethod[];
  /** `image-header` (`/i/*`), `image-signed` (`/t/*`) or `proxy` (a configured route). */
  readonly kind: 'image-header' | 'image-signed' | 'proxy';
  readonly upstream: string;
  readonly stripPrefix?: string;
  readonly auth: RouteAuth;
  readonly scopes: readonly string[];
  readonly limits: RouteLimits;
  /** Requests of an authenticated caller count towards its tenant's quotas. */
  readonly countsTowardQuota: boolean;
  readonly maxBodyBytes: number;
  readonly timeoutMs?: number;
  readonly retries: number;
  readonly cors?: CorsConfig;
  readonly headers?: HeaderRulesConfig;
  /** TTL for a configured route's cache; the image routes follow `cache.enabled`. */
  readonly cacheTtlSeconds?: number;
  readonly websocket: boolean;
}

/**
 * The route specs of a validated configuration, image routes first (the loader has already
 * refused cross-key problems: see routeProblems in config/routes.config.ts).
 */
export function buildRouteSpecs(config: GatewayConfig): RouteSpec[] {
  return [imageRoute(config, 'header'), imageRoute(config, 'signed'), ...config.routes.map((route) => configuredRoute(config, route))];
}

function imageRoute(config: GatewayConfig, mode: 'header' | 'signed'): RouteSpec {
  const extra: ImageRouteConfig = config.imageRoutes?.[mode] ?? {};
  const capacity = config.rateLimit.routes.proxy;
  return {
    name: mode === 'header' ? HEADER_MODE_ROUTE : SIGNED_MODE_ROUTE,
    path: mode === 'header' ? '/i/*' : '/t/*',
    methods: ['GET', 'HEAD'],
    kind: mode === 'header' ? 'image-header' : 'image-signed',
    upstream: IMGPROXY_UPSTREAM,
    auth: mode === 'header' ? 'api-key' : 'signed-url',
    scopes: [IMAGE_READ_SCOPE],
    limits: {
      // Both image routes draw on the one `proxy` capacity bucket of rateLimit.routes.
      bucket: HEADER_MODE_ROUTE,
      capacity: (extra.rateLimit?.by === 'route' ? windowOf(extra.rateLimit) : undefined) ?? { perMinute: capacity.perMinute, perHour: capacity.perHour, burst: capacity.burst },
      perCaller: (extra.rateLimit && extra.rateLimit.by !== 'route' ? windowOf(extra.rateLimit) : undefined) ?? capacity.perCaller,
      policy: extra.rateLimit?.policy ?? capacity.policy,
    },
    countsTowardQuota: true,
    maxBodyBytes: 0,
    timeoutMs: extra.timeoutSeconds !== undefined ? extra.timeoutSeconds * 1000 : undefined,
    retries: extra.retries ?? config.proxy.retries,
    cors: extra.cors,
    headers: extra.headers,
    websocket: false,
  };
}

function configuredRoute(config: GatewayConfig, route: RouteConfig): RouteSpec {
  const rateLimit = route.rateLimit;
  const byRoute = rateLimit?.by === 'route';
  return {
    name: route.name,
    path: route.path,
    methods: route.methods ?? ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    kind: 'proxy',
    upstream: route.upstream,
    stripPrefix: route.stripPrefix,
    auth: route.auth ?? 'api-key',
    scopes: route.scopes ?? [],
    limits: {
      bucket: route.name,
      capacity: rateLimit && byRoute ? windowOf(rateLimit) : undefined,
      perCaller: rateLimit && !byRoute ? windowOf(rateLimit) : undefined,
      policy: rateLimit?.policy ?? 'exact',
    },
    countsTowardQuota: (route.auth ?? 'api-key') !== 'none',
    maxBodyBytes: route.maxBodyBytes ?? config.proxy.maxRequestBodyBytes,
    timeoutMs: route.timeoutSeconds !== undefined ? route.timeoutSeconds * 1000 : undefined,
    retries: route.retries ?? config.proxy.retries,
    cors: route.cors,
    headers: route.headers,
    cacheTtlSeconds: route.cache?.ttlSeconds,
    websocket: route.websocket ?? false,
  };
}

/** The figures of a rate-limit block, or undefined when it names none (only a policy, say). */
function windowOf(limit: RouteRateLimitConfig): WindowLimits | undefined {
  if (limit.perMinute === undefined && limit.perHour === undefined) return undefined;
  return { perMinute: limit.perMinute, perHour: limit.perHour, burst: limit.burst };
}

/** The methods a route answers, HEAD implied by GET: the value of `Allow` on a 405. */
export function allowedMethods(spec: Pick<RouteSpec, 'methods' | 'cors'>): string[] {
  const methods = new Set<string>(spec.methods);
  if (methods.has('GET')) methods.add('HEAD');
  if (spec.cors) methods.add('OPTIONS');
  return ROUTE_METHOD_ORDER.filter((method) => methods.has(method));
}

const ROUTE_METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
