import type { GatewayException } from '../common/errors/gateway.exception';
import type { AuthContext } from '../common/http/request-context';

/** Per-minute and/or per-hour figures of one bucket kind; `burst` is the minute bucket's capacity. */
export interface WindowLimits {
  readonly perMinute?: number;
  readonly perHour?: number;
  readonly burst?: number;
}

/** How a route's buckets are kept (docs/rate-limits-and-quotas.md). */
export type AdmissionPolicyName = 'exact' | 'local-sync';

/** What a route asks of the admission store, compiled once per route by `compileRoute`. */
export interface RouteLimitsSpec {
  /** 'proxy', 'signed-proxy', 'upload', or a config route's name ([a-z0-9-]). */
  readonly routeName: string;
  /** One bucket for the route shared by every caller: empty → 503 `unavailable`. */
  readonly capacity?: WindowLimits;
  /** A bucket per tenant on this route (per client IP on an open route): empty → 429 scope `route`. */
  readonly perCaller?: WindowLimits;
  readonly policy: AdmissionPolicyName;
  /** Counted as a request of the tenant's quotas (checked at admission, bytes counted at the end). */
  readonly countsTowardQuota: boolean;
}

/** Who is asking: the client IP always, the tenant once authenticated. */
export interface AdmissionCaller {
  readonly clientIp: string;
  readonly auth?: AuthContext;
}

/** Response header name/value pairs, ready to set. */
export type HeaderPairs = readonly (readonly [name: string, value: string])[];

/**
 * What the store must remember about an admitted, counted request until its response is over:
 * which tenant, day and month view it was counted into. Opaque to callers; hand it to `settle`.
 */
export interface AdmissionTicket {
  readonly tenantId: string;
  /** 'YYYY-MM-DD' (UTC) of admission: the day the request and its bytes belong to. */
  readonly day: string;
  /** Seed token of the month view the request was counted into; '' when it is not in one yet. */
  readonly token: string;
  /** `local-sync`: counted in process at admission, added to the shared view in the next batch. */
  readonly deferred: boolean;
}

/**
 * The decision on one request. The rate part (`rateRefusal`, `rateHeaders`) and the quota part
 * (`quotaRefusal`, `quotaHeaders`) are separate, because the pipeline has a rate-limiting step and
 * a quota step; `allowed`/`refusal` sum them up (rate first).
 */
export interface AdmissionResult {
  readonly allowed: boolean;
  /** The refusal to answer with: the rate refusal if any, else the quota refusal. */
  readonly refusal?: GatewayException;
  /** 429 `rate_limited` {scope: tenant | route | ip}, or 503 `unavailable` when the route is at capacity. */
  readonly rateRefusal?: GatewayException;
  /** 429 `quota_exceeded` {quota}. */
  readonly quotaRefusal?: GatewayException;
  /** `X-RateLimit-*`, `RateLimit-Policy`, `RateLimit` of the caller's own buckets (plus `Retry-After` on a refusal). */
  readonly rateHeaders: HeaderPairs;
  /** `X-Quota-Limit`, `X-Quota-Remaining`, `X-Quota-Reset`; empty when the route counts toward no quota. */
  readonly quotaHeaders: HeaderPairs;
  /** Present when the request was admitted and counted: settle it once the response is over. */
  readonly ticket?: AdmissionTicket;
}

/** The IP bucket of the pre-authentication path. */
export interface PreAuthResult {
  readonly allowed: boolean;
  /** 429 `rate_limited` {scope: 'ip'} with its headers. */
  readonly refusal?: GatewayException;
  readonly headers: HeaderPairs;
}

/** What a finished (or aborted) response adds to the request's count. */
export interface SettleFigures {
  /** Request body bytes received from the client (counted on the stream, partial transfers included). */
  readonly bytesIn: number;
  /** Response body bytes sent to the client. */
  readonly bytesOut: number;
  /** The gateway answered a 5xx itself (no backend, backend failed or timed out): the request is refunded. */
  readonly gatewayError: boolean;
  /** The backend rendered the image (not served from the gateway's image cache). */
  readonly render: boolean;
}
