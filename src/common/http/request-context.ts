import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { AdmissionResult } from '../../rate-limit/admission.types';
import type { CompiledImagePolicy } from '../../signing/image-policy';

/** A tenant's limits after its per-tenant overrides are applied to its plan. */
export interface EffectiveLimits {
  perMinute: number;
  perHour: number;
  /** Bucket capacity; undefined = the per-window figure. */
  burst?: number;
  monthlyRequests: number;
  dailyRequests?: number;
  monthlyBandwidthBytes: number;
  storageBytes: number;
}

/** What the auth guards learn about the caller (from cache on the hot path), read by every later step. */
export interface AuthContext {
  tenantId: string;
  tenantName: string;
  /** Public key id (`igw_<keyId>_...`), or undefined for JWT callers. */
  keyId?: string;
  scopes: readonly string[];
  via: 'api-key' | 'signed-url' | 'jwt';
  limits: EffectiveLimits;
  /** Remote source prefixes this tenant may fetch from (docs/imgproxy.md). */
  allowedSources: readonly string[];
  allowUnsignedUrls: boolean;
  /** The plan's and tenant's image policy, merged and compiled once per key-cache fill (docs/imgproxy.md). */
  imagePolicy?: CompiledImagePolicy;
}

/**
 * Per-request state shared by the pipeline steps (docs/proxy-and-backends.md). One object, created in the first
 * hook and hung on both the Fastify request and the raw Node request, so code that only sees
 * the raw request or response reads the same fields.
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
    gw: import('../../gateway/context').GatewayContext;
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
