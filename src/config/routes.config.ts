import { Type } from 'class-transformer';
import FindMyWay from 'find-my-way';
import { DiscoveryConfig } from './discovery.config';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
  registerDecorator,
} from 'class-validator';

/**
 * The schema of routes and upstreams in YAML (docs/routes.md). Validated with the rest of the
 * configuration at boot and again on every reload, so the request path trusts what it compiles.
 * Cross-references (a route's upstream exists, stripPrefix is a prefix of the path, no duplicate
 * names) are checked in route-spec.ts once the whole file is read.
 */

/** Methods a route may list. TRACE and CONNECT are never proxied (they echo or tunnel). */
export const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

export const BALANCERS = ['weighted-round-robin', 'least-connections', 'ip-hash', 'random'] as const;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const NAME_MESSAGE = 'must be 1-64 of [A-Za-z0-9._-]';
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

export class RouteRateLimitConfig {
  @IsOptional() @IsInt() @Min(1) perMinute?: number;
  @IsOptional() @IsInt() @Min(1) perHour?: number;
  @IsOptional() @IsInt() @Min(1) burst?: number;
  /** `caller` (default): one bucket per tenant, or per client IP on an open route. `route`: one for all. */
  @IsOptional() @IsIn(['caller', 'route']) by?: 'caller' | 'route';
  /** `exact` (default): one atomic Redis call. `local-sync`: counted in process, synced often. */
  @IsOptional() @IsIn(['exact', 'local-sync']) policy?: 'exact' | 'local-sync';
}

export class CorsConfig {
  /** Exact origins (`https://app.example.com`) or `*`. */
  @IsArray() @ArrayMinSize(1) @ArrayMaxSize(100) @IsString({ each: true }) @Matches(/^(\*|https?:\/\/[^\s/]+)$/, { each: true, message: 'each origin must be * or scheme://host[:port]' })
  origins: string[];
  @IsOptional() @IsArray() @IsIn(ROUTE_METHODS, { each: true }) methods?: RouteMethod[];
  @IsOptional() @IsArray() @Matches(HEADER_NAME, { each: true, message: 'each header must be a header name' }) headers?: string[];
  @IsOptional() @IsArray() @Matches(HEADER_NAME, { each: true, message: 'each header must be a header name' }) exposeHeaders?: string[];
  @IsOptional() @IsBoolean() credentials?: boolean;
  @IsOptional() @IsInt() @Min(0) @Max(86_400) maxAgeSeconds?: number;
}

/**
 * Headers a rule may not set: they frame the message or describe one connection, so a value from
 * the configuration would corrupt the stream (a wrong Content-Length) or the connection.
 */
const UNSETTABLE_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);
/** What Node accepts in a header value (RFC 9110 field-value): no CR, LF, NUL or other controls but HTAB. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * What is wrong with a `set:` map, one message per header; empty when every name is a header
 * name and every value (a string or a number) is a valid header value. Checked with the rest of
 * the configuration, because the request path writes these as they are: a bad name there is an
 * exception in the middle of a response.
 */
export function headerSetProblems(set: unknown): string[] {
  if (typeof set !== 'object' || set === null || Array.isArray(set)) return ['must be a mapping of header name to value'];
  const problems: string[] = [];
  for (const [name, value] of Object.entries(set as Record<string, unknown>)) {
    if (!HEADER_NAME.test(name)) problems.push(`"${name}" is not a header name`);
    else if (UNSETTABLE_HEADERS.has(name.toLowerCase())) problems.push(`"${name}" frames the message or the connection and cannot be set`);
    if (typeof value !== 'string' && typeof value !== 'number') problems.push(`the value of "${name}" must be a string`);
    else if (!HEADER_VALUE.test(String(value))) problems.push(`the value of "${name}" holds a line break or another control character`);
  }
  return problems;
}

function IsHeaderSet(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isHeaderSet',
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: (args) => headerSetProblems(args.value).join('; ') },
      validator: { validate: (value: unknown) => headerSetProblems(value).length === 0 },
    });
}

export class HeaderEditConfig {
  /** Header name → value, set (replacing) on the message. */
  @IsOptional() @IsHeaderSet() set?: Record<string, string>;
  @IsOptional() @IsArray() @Matches(HEADER_NAME, { each: true, message: 'each header must be a header name' }) remove?: string[];
}

export class HeaderRulesConfig {
  @IsOptional() @ValidateNested() @Type(() => HeaderEditConfig) request?: HeaderEditConfig;
  @IsOptional() @ValidateNested() @Type(() => HeaderEditConfig) response?: HeaderEditConfig;
}

export class RouteCacheConfig {
  @IsInt() @Min(1) @Max(31_536_000) ttlSeconds: number;
}

/** What the built-in image routes accept from YAML (`imageRoutes.header`, `imageRoutes.signed`). */
export class ImageRouteConfig {
  @IsOptional() @ValidateNested() @Type(() => RouteRateLimitConfig) rateLimit?: RouteRateLimitConfig;
  @IsOptional() @ValidateNested() @Type(() => CorsConfig) cors?: CorsConfig;
  @IsOptional() @ValidateNested() @Type(() => HeaderRulesConfig) headers?: HeaderRulesConfig;
  @IsOptional() @IsInt() @Min(1) @Max(3600) timeoutSeconds?: number;
  @IsOptional() @IsInt() @Min(0) @Max(10) retries?: number;
}

export class ImageRoutesConfig {
  /** `/i/*`: header mode, API key. */
  @IsOptional() @ValidateNested() @Type(() => ImageRouteConfig) header?: ImageRouteConfig;
  /** `/t/*`: signed URLs. */
  @IsOptional() @ValidateNested() @Type(() => ImageRouteConfig) signed?: ImageRouteConfig;
}

export class RouteConfig {
  @IsString() @Matches(NAME, { message: NAME_MESSAGE }) name: string;
  /** find-my-way syntax: static segments, `:param` and a trailing `*`. */
  @IsString() @Matches(/^\/[^\s?#]*$/, { message: 'must start with / and hold no spaces, ? or #' }) @MaxLength(1024) path: string;
  @IsOptional() @IsArray() @ArrayMinSize(1) @IsIn(ROUTE_METHODS, { each: true, message: `each method must be one of ${ROUTE_METHODS.join(', ')} (TRACE and CONNECT are never proxied)` })
  methods?: RouteMethod[];
  @IsString() @Matches(NAME, { message: NAME_MESSAGE }) upstream: string;
  @IsOptional() @IsString() @Matches(/^\/[^\s?#]*[^/\s?#]$/, { message: 'must start with / and not end with /' }) stripPrefix?: string;
  @IsOptional() @IsIn(['api-key', 'jwt', 'none']) auth?: 'api-key' | 'jwt' | 'none';
  /** Scopes an API key needs on this route (none by default beyond a valid key). */
  @IsOptional() @IsArray() @IsString({ each: true }) scopes?: string[];
  @IsOptional() @ValidateNested() @Type(() => RouteRateLimitConfig) rateLimit?: RouteRateLimitConfig;
  @IsOptional() @IsInt() @Min(0) maxBodyBytes?: number;
  @IsOptional() @IsInt() @Min(1) @Max(3600) timeoutSeconds?: number;
  @IsOptional() @IsInt() @Min(0) @Max(10) retries?: number;
  @IsOptional() @ValidateNested() @Type(() => CorsConfig) cors?: CorsConfig;
  @IsOptional() @ValidateNested() @Type(() => HeaderRulesConfig) headers?: HeaderRulesConfig;
  @IsOptional() @ValidateNested() @Type(() => RouteCacheConfig) cache?: RouteCacheConfig;
  @IsOptional() @IsBoolean() websocket?: boolean;
}

export class UpstreamBackendConfig {
  @IsString() @Matches(NAME, { message: NAME_MESSAGE }) name: string;
  @IsString() @Matches(/^(https?|wss?):\/\/[^\s]+$/, { message: 'must be an http(s) URL' }) url: string;
  @IsOptional() @IsInt() @Min(0) @Max(100) weight?: number;
}

export class UpstreamHealthCheckConfig {
  @IsOptional() @IsString() @Matches(/^\//, { message: 'must start with /' }) path?: string;
  @IsOptional() @IsInt() @Min(1) @Max(86_400) intervalSeconds?: number;
  @IsOptional() @IsInt() @Min(1) @Max(300) timeoutSeconds?: number;
  @IsOptional() @IsInt() @Min(1) @Max(100) unhealthyThreshold?: number;
  @IsOptional() @IsInt() @Min(1) @Max(100) healthyThreshold?: number;
}

export class UpstreamCircuitBreakerConfig {
  @IsOptional() @IsInt() @Min(1) @Max(1000) failureThreshold?: number;
  @IsOptional() @IsInt() @Min(1) @Max(3600) cooldownSeconds?: number;
}

export class UpstreamConfig {
  @IsOptional() @IsIn(BALANCERS) balancer?: (typeof BALANCERS)[number];
  @IsOptional() @IsArray() @ArrayMaxSize(1000) @ValidateNested({ each: true }) @Type(() => UpstreamBackendConfig) backends?: UpstreamBackendConfig[];
  @IsOptional() @ValidateNested() @Type(() => DiscoveryConfig) discovery?: DiscoveryConfig;
  @IsOptional() @ValidateNested() @Type(() => UpstreamHealthCheckConfig) healthCheck?: UpstreamHealthCheckConfig;
  @IsOptional() @ValidateNested() @Type(() => UpstreamCircuitBreakerConfig) circuitBreaker?: UpstreamCircuitBreakerConfig;
}

/** Names the image routes use; a configured route may not take them. */
const RESERVED_ROUTE_NAMES = ['proxy', 'signed-proxy'];
const IMAGE_PATHS = ['/i/*', '/t/*'];

/**
 * Problems across keys of `routes` and `upstreams`: unknown upstreams, duplicate names, paths
 * find-my-way refuses, a stripPrefix that is not the path's prefix, JWT routes without `auth.jwt`,
 * an upstream with both or neither of backends and discovery. Empty when the tables can be built.
 */
export function routeProblems(routes: readonly RouteConfig[], upstreams: Readonly<Record<string, UpstreamConfig>>, jwtConfigured: boolean): string[] {
  const problems: string[] = [];
  const names = new Set(RESERVED_ROUTE_NAMES);
  const router = FindMyWay();
  for (const path of IMAGE_PATHS) router.on('GET', path, noop);
  const seenPaths = new Set(IMAGE_PATHS);
  routes.forEach((route, i) => {
    const at = `routes[${i}]`;
    if (names.has(route.name)) problems.push(`${at}.name: "${route.name}" is taken by another route`);
    names.add(route.name);
    if (route.upstream !== 'imgproxy' && !upstreams[route.upstream]) problems.push(`${at}.upstream: no upstream named "${route.upstream}"`);
    if (!seenPaths.has(route.path)) {
      try {
        router.on('GET', route.path, noop);
        seenPaths.add(route.path);
      } catch (error) {
        problems.push(`${at}.path: ${(error as Error).message}`);
      }
    } else if (IMAGE_PATHS.includes(route.path)) {
      problems.push(`${at}.path: ${route.path} is an image route`);
    }
    if (route.stripPrefix && !staticPrefixOf(route.path).startsWith(route.stripPrefix)) {
      problems.push(`${at}.stripPrefix: "${route.stripPrefix}" is not a prefix of the path's static part "${staticPrefixOf(route.path)}"`);
    }
    if (route.auth === 'jwt' && !jwtConfigured) problems.push(`${at}.auth: jwt needs auth.jwt to be configured`);
    if (route.rateLimit && route.rateLimit.perMinute === undefined && route.rateLimit.perHour === undefined) {
      problems.push(`${at}.rateLimit: needs perMinute or perHour`);
    }
    if (route.websocket && route.methods && !route.methods.includes('GET')) problems.push(`${at}.websocket: a WebSocket route must allow GET`);
  });
  for (const [name, upstream] of Object.entries(upstreams)) {
    const hasBackends = (upstream.backends?.length ?? 0) > 0;
    if (name === 'imgproxy') {
      if (hasBackends || upstream.discovery) problems.push(`upstreams.imgproxy: its backends come from BACKENDS and the backends table; set only balancer, healthCheck and circuitBreaker here`);
      continue;
    }
    // The discovery block's own rules (one of dns/srv, port with dns) are its schema's.
    if (hasBackends === Boolean(upstream.discovery)) problems.push(`upstreams.${name}: needs exactly one of backends or discovery`);
    const seen = new Set<string>();
    for (const backend of upstream.backends ?? []) {
      if (seen.has(backend.name)) problems.push(`upstreams.${name}.backends: "${backend.name}" is listed twice`);
      seen.add(backend.name);
    }
  }
  return problems;
}

/** The path up to its first parameter or wildcard: what stripPrefix may remove. */
export function staticPrefixOf(path: string): string {
  const cut = path.search(/[:*]/);
  return cut === -1 ? path : path.slice(0, cut);
}

function noop(): void {}
