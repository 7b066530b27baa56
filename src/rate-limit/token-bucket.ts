/**
 * Token bucket arithmetic shared by every TokenBucketStore (docs/rate-limits-and-quotas.md).
 *
 * Pure functions, no I/O: the in-process store calls them directly and the Redis Lua script
 * (redis-token-bucket.script.ts) mirrors `refill` and the admission test line for line, so both
 * stores admit exactly the same sequence of requests.
 *
 * Tokens are kept as integers "scaled" by the window length in milliseconds (one token =
 * windowSeconds × 1000 units). A bucket of `rate` tokens per window then refills by exactly
 * `rate` units per elapsed millisecond: every quantity is an integer below 2^53, so JavaScript and
 * Lua (both IEEE doubles) compute bit-identical results and Redis stores them without rounding.
 */

/**
 * Who a bucket limits: the client IP, the tenant, the tenant on one route (`route`), or a route's
 * capacity shared by every caller (`capacity`, refused with 503 rather than 429: the service is
 * full, the caller did nothing wrong).
 */
export type RateLimitScope = 'ip' | 'tenant' | 'route' | 'capacity';

/** One bucket a request is checked against. */
export interface TokenBucket {
  /** Identity of the bucket inside its store; see `tokenBucketKey`. */
  readonly key: string;
  readonly scope: RateLimitScope;
  /** Tokens added per window, continuously (rate / windowSeconds per second). Integer ≥ 1. */
  readonly rate: number;
  /** Integer ≥ 1: 60 and 3600 in production, a second or two in tests. */
  readonly windowSeconds: number;
  /** Capacity. Defaults to `rate`: a fresh client may spend a full window's allowance at once. */
  readonly burst?: number;
}

/** What a store keeps per bucket. An absent state means a full bucket. */
export interface TokenBucketState {
  /** Tokens × window milliseconds (see the file comment). */
  readonly scaledTokens: number;
  /** Clock of the store (Redis server time for the Redis store), in milliseconds. */
  readonly updatedAtMs: number;
}

/** Outcome for one bucket, after the request (consumed if admitted, untouched if rejected). */
export interface BucketResult {
  readonly scope: RateLimitScope;
  /** Capacity (burst), so that 0 ≤ remaining ≤ limit always holds. */
  readonly limit: number;
  /** Tokens per window, for `RateLimit-Policy: "<scope>";q=<rate>;w=<windowSeconds>`. */
  readonly rate: number;
  /** Whole tokens left. */
  readonly remaining: number;
  /** Seconds until the bucket is full again (0 when full). */
  readonly resetSeconds: number;
  readonly windowSeconds: number;
}

export interface ConsumeResult {
  readonly allowed: boolean;
  /** One entry per bucket, in the order the buckets were given. */
  readonly results: readonly BucketResult[];
  /** On rejection: seconds until every denying bucket holds the request's cost (≥ 1). */
  readonly retryAfterSeconds?: number;
  /** On rejection: the scope of the denying bucket that needs the longest wait. */
  readonly deniedScope?: RateLimitScope;
}

/** `tryConsumeAll` also hands back the states the caller must store when the request is admitted. */
export interface ConsumeOutcome extends ConsumeResult {
  /** Refilled (and, if admitted, consumed) state of each bucket at `nowMs`. */
  readonly nextStates: readonly TokenBucketState[];
}

/** Interchangeable storage policies (Kong style): Redis shared, or in-process. */
export interface TokenBucketStore {
  /**
   * Checks every bucket and, only if each holds `cost` tokens, takes `cost` from each, atomically.
   * Rejects only when the store itself fails; a denied request resolves with `allowed: false`.
   */
  consume(buckets: readonly TokenBucket[], cost?: number): Promise<ConsumeResult>;
}

/**
 * Largest scaled capacity accepted. Below 2^53 with room for one refill step, so sums stay exact;
 * still allows a burst of a million tokens on an hourly window (3.6e15).
 */
export const MAX_SCALED_CAPACITY = 2 ** 52;

/**
 * Key of a bucket. The `{…}` part is the Redis Cluster hash tag: the per-minute and per-hour buckets
 * of one tenant land in one slot and are consumed by one script even on a cluster.
 */
export function tokenBucketKey(scope: RateLimitScope, id: string, windowSeconds: number): string {
  return `{${SCOPE_TAGS[scope]}:${id}}:${windowSeconds}`;
}

const SCOPE_TAGS: Record<RateLimitScope, string> = { ip: 'ip', tenant: 't', route: 'r', capacity: 'r' };

export function windowMsOf(bucket: TokenBucket): number {
  return bucket.windowSeconds * 1000;
}

export function capacityOf(bucket: TokenBucket): number {
  return burstOf(bucket) * windowMsOf(bucket);
}

function burstOf(bucket: TokenBucket): number {
  return bucket.burst ?? bucket.rate;
}

/**
 * Throws a RangeError for buckets the arithmetic cannot serve exactly. Config is validated at the
 * edge; this guard is cheap (a handful of buckets) and turns a wiring mistake into a clear error
 * instead of silently wrong limits.
 */
export function assertValidBuckets(buckets: readonly TokenBucket[], cost: number): void {
  if (!Number.isInteger(cost) || cost < 1) {
    throw new RangeError(`rate-limit cost must be an integer ≥ 1, got ${cost}`);
  }
  for (let i = 0; i < buckets.length; i++) {
    const bucket = buckets[i];
    const burst = burstOf(bucket);
    if (!isPositiveInteger(bucket.rate) || !isPositiveInteger(bucket.windowSeconds) || !isPositiveInteger(burst)) {
      throw new RangeError(`bucket ${bucket.key}: rate, windowSeconds and burst must be integers ≥ 1`);
    }
    if (capacityOf(bucket) > MAX_SCALED_CAPACITY) {
      throw new RangeError(`bucket ${bucket.key}: burst × windowSeconds is too large`);
    }
    // Such a request could never be admitted: a Retry-After would send the client into a loop.
    if (cost > burst) {
      throw new RangeError(`bucket ${bucket.key}: cost ${cost} exceeds its burst ${burst}`);
    }
    for (let j = 0; j < i; j++) {
      if (buckets[j].key === bucket.key) throw new RangeError(`bucket ${bucket.key} listed twice`);
    }
  }
}

function isPositiveInteger(value: number): boolean {
  return Number.isInteger(value) && value >= 1;
}

/**
 * State of `bucket` at `nowMs`: continuous refill at rate per window, capped at the burst. A clock
 * that went backwards (NTP step, Redis failover) refills nothing and re-anchors at `nowMs`. A
 * level below zero (the debt `local-sync` instances leave when they spent the same tokens) refills
 * the same way, so the long-run rate stays the configured one.
 */
export function refill(state: TokenBucketState | undefined, bucket: TokenBucket, nowMs: number): TokenBucketState {
  const capacity = capacityOf(bucket);
  if (state === undefined) return { scaledTokens: capacity, updatedAtMs: nowMs };
  const elapsedMs = Math.max(0, nowMs - state.updatedAtMs);
  return { scaledTokens: Math.min(capacity, state.scaledTokens + elapsedMs * bucket.rate), updatedAtMs: nowMs };
}

/** Milliseconds until a bucket holding `scaledTokens` is full. Also the TTL of its stored state. */
export function msUntilFull(scaledTokens: number, bucket: TokenBucket): number {
  return Math.ceil((capacityOf(bucket) - scaledTokens) / bucket.rate);
}

/**
 * The decision and the per-bucket results, given each bucket's refilled level before consumption.
 * Admitted only if every bucket holds `cost` tokens; the Redis script makes the same comparison.
 */
export function decideFromLevels(
  buckets: readonly TokenBucket[],
  levels: readonly number[],
  cost: number,
): ConsumeResult {
  let allowed = true;
  let longestWaitMs = 0;
  let deniedScope: RateLimitScope | undefined;
  for (let i = 0; i < buckets.length; i++) {
    const bucket = buckets[i];
    const missing = cost * windowMsOf(bucket) - levels[i];
    if (missing > 0) {
      allowed = false;
      const waitMs = Math.ceil(missing / bucket.rate);
      if (waitMs > longestWaitMs) {
        longestWaitMs = waitMs;
        deniedScope = bucket.scope;
      }
    }
  }
  const results = buckets.map((bucket, i): BucketResult => {
    const windowMs = windowMsOf(bucket);
    const after = allowed ? levels[i] - cost * windowMs : levels[i];
    return {
      scope: bucket.scope,
      limit: burstOf(bucket),
      rate: bucket.rate,
      remaining: Math.max(0, Math.floor(after / windowMs)),
      resetSeconds: Math.ceil(msUntilFull(after, bucket) / 1000),
      windowSeconds: bucket.windowSeconds,
    };
  });
  if (allowed) return { allowed, results };
  return { allowed, results, retryAfterSeconds: Math.ceil(longestWaitMs / 1000), deniedScope };
}

/**
 * All-or-nothing consumption of `cost` tokens from every bucket at `nowMs`. `states[i]` belongs to
 * `buckets[i]` (undefined = never seen or expired = full). On rejection `nextStates` are merely
 * refilled, so storing them or not makes no difference to later decisions.
 */
export function tryConsumeAll(
  states: readonly (TokenBucketState | undefined)[],
  buckets: readonly TokenBucket[],
  nowMs: number,
  cost = 1,
): ConsumeOutcome {
  assertValidBuckets(buckets, cost);
  const refilled = buckets.map((bucket, i) => refill(states[i], bucket, nowMs));
  const decision = decideFromLevels(
    buckets,
    refilled.map((state) => state.scaledTokens),
    cost,
  );
  const nextStates = decision.allowed
    ? refilled.map((state, i) => ({
        scaledTokens: state.scaledTokens - cost * windowMsOf(buckets[i]),
        updatedAtMs: nowMs,
      }))
    : refilled;
  return { ...decision, nextStates };
}

/**
 * The bucket the `X-RateLimit-*` headers describe: least remaining relative to its limit, ties
 * broken by the longer reset (the one the client has to wait on longest), then by order.
 */
export function mostRestrictive(results: readonly BucketResult[]): BucketResult | undefined {
  let best: BucketResult | undefined;
  for (const candidate of results) {
    if (best === undefined) {
      best = candidate;
      continue;
    }
    // Cross-multiplied to compare remaining/limit without floating-point ties going astray.
    const lhs = candidate.remaining * best.limit;
    const rhs = best.remaining * candidate.limit;
    if (lhs < rhs || (lhs === rhs && candidate.resetSeconds > best.resetSeconds)) best = candidate;
  }
  return best;
}
