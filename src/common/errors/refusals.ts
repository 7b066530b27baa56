import type { ErrorCode } from './error-catalogue';
import { GatewayException, TENANT_AUTH_CHALLENGE, type ErrorExtras } from './gateway.exception';

/** The challenge of every 401 of the admin API. */
export const ADMIN_AUTH_CHALLENGE = 'Bearer realm="admin"';

export type RefusalHeaders = Readonly<Record<string, string | number>>;

/** `rate_limited` → `rateLimited`: the factory's name for each catalogue code. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** Exactly one factory per catalogue code: a code added to the catalogue without one fails to compile. */
type RefusalFactory = { readonly [K in ErrorCode as CamelCase<K>]: (...args: never[]) => GatewayException };

/** Delta seconds for `Retry-After`: a whole number, at least 1 (0 would invite a busy loop). */
export function retryAfterSeconds(seconds: number | undefined): number {
  return Number.isFinite(seconds) && (seconds as number) > 1 ? Math.ceil(seconds as number) : 1;
}

function retrying(code: ErrorCode, seconds: number, message: string | undefined, extras: ErrorExtras, headers: RefusalHeaders): GatewayException {
  const retryAfter = retryAfterSeconds(seconds);
  return new GatewayException(code, message, { ...extras, retryAfter }, { ...headers, 'retry-after': retryAfter });
}

/**
 * One factory per code of the error catalogue (docs/architecture.md, Errors): the status, the
 * headers a client needs to act on it and the body's extra fields are decided here, once, so they
 * cannot drift between call sites. Every 401 carries its `WWW-Authenticate` challenge, every 405
 * its `Allow`, every 429 and 503 its `Retry-After` (also as `retryAfter` in the body).
 *
 * Each returns the exception rather than throwing it: a guard throws it, a Fastify hook or a raw
 * Node handler writes it (refusal-writer.ts), with the same shape either way. Whether the
 * connection closes after the answer is the writer's decision (a body left unread), not the code's.
 */
export const refusals = {
  validationFailed: (details: readonly string[] = [], message?: string) =>
    new GatewayException('validation_failed', message, details.length > 0 ? { details: [...details] } : {}),
  badSource: (message?: string) => new GatewayException('bad_source', message),
  badUrl: (message?: string) => new GatewayException('bad_url', message),
  /** `challenge` defaults to the tenant realm; the admin API passes ADMIN_AUTH_CHALLENGE. */
  unauthorized: (message?: string, challenge: string = TENANT_AUTH_CHALLENGE) =>
    new GatewayException('unauthorized', message, {}, { 'www-authenticate': challenge }),
  ipNotAllowed: (message?: string) => new GatewayException('ip_not_allowed', message),
  forbidden: (message?: string, extras: ErrorExtras = {}) => new GatewayException('forbidden', message, extras),
  notFound: (message?: string) => new GatewayException('not_found', message),
  /** `allow`: the methods the target resource does serve (may be empty: it serves none). */
  methodNotAllowed: (allow: readonly string[], message?: string) =>
    new GatewayException('method_not_allowed', message, { allow: [...allow] }, { allow: allow.join(', ') }),
  requestTimeout: (message?: string) => new GatewayException('request_timeout', message),
  conflict: (message?: string) => new GatewayException('conflict', message),
  payloadTooLarge: (message?: string, extras: ErrorExtras = {}) => new GatewayException('payload_too_large', message, extras),
  unsupportedMediaType: (message?: string) => new GatewayException('unsupported_media_type', message),
  /** The bucket that refused (`ip`, `tenant`, `route`), when it holds a token again, and its rate-limit headers. */
  rateLimited: (scope: string, retryAfter: number, headers: RefusalHeaders = {}) => retrying('rate_limited', retryAfter, undefined, { scope }, headers),
  /**
   * `retryAfter`: seconds until the quota's period resets. A quota that no clock frees (storage:
   * images must be deleted) passes none and gets the catalogue's minimum.
   */
  quotaExceeded: (quota: string, options: { retryAfter?: number; message?: string; extras?: ErrorExtras; headers?: RefusalHeaders } = {}) =>
    retrying('quota_exceeded', options.retryAfter ?? 1, options.message ?? `The ${quota} quota is used up.`, { ...options.extras, quota }, options.headers ?? {}),
  headersTooLarge: (message?: string) => new GatewayException('headers_too_large', message),
  internalError: () => new GatewayException('internal_error'),
  badGateway: (message?: string) => new GatewayException('bad_gateway', message),
  noHealthyBackend: (retryAfter = 5, message?: string) => retrying('no_healthy_backend', retryAfter, message, {}, {}),
  unavailable: (retryAfter: number, message?: string, extras: ErrorExtras = {}) => retrying('unavailable', retryAfter, message, extras, {}),
  gatewayTimeout: (message?: string) => new GatewayException('gateway_timeout', message),
} as const satisfies RefusalFactory;

/**
 * The refusal for a bare status raised by code outside the gateway (Nest, Fastify, Node's HTTP
 * parser), with the catalogue's message and headers. A 405 this way names no method: callers that
 * know the resource build `refusals.methodNotAllowed(allow)` instead.
 */
export function refusalForStatus(code: ErrorCode, message?: string): GatewayException {
  switch (code) {
    case 'unauthorized':
      return refusals.unauthorized(message);
    case 'method_not_allowed':
      return refusals.methodNotAllowed([], message);
    case 'rate_limited':
    case 'quota_exceeded':
      // Neither the scope nor the quota is known here: only the catalogue's minimum wait.
      return retrying(code, 1, message, {}, {});
    case 'no_healthy_backend':
      return refusals.noHealthyBackend(undefined, message);
    case 'unavailable':
      return refusals.unavailable(1, message);
    case 'payload_too_large':
      return refusals.payloadTooLarge(message);
    case 'request_timeout':
      return refusals.requestTimeout(message);
    case 'headers_too_large':
      return refusals.headersTooLarge(message);
    default:
      return new GatewayException(code, message);
  }
}
