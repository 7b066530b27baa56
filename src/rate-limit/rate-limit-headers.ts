import { type BucketResult, type ConsumeResult, mostRestrictive } from './token-bucket';

export type HeaderMap = Record<string, string | number>;

/**
 * Name of a bucket in the IETF draft headers (draft-ietf-httpapi-ratelimit-headers). The scope
 * alone for per-minute buckets, so the common case reads `"tenant";q=1000;w=60`; other windows
 * get a suffix, because a tenant has two buckets and each item of `RateLimit-Policy` must name one.
 */
export function policyName(result: Pick<BucketResult, 'scope' | 'windowSeconds'>): string {
  if (result.windowSeconds === 60) return result.scope;
  if (result.windowSeconds === 3600) return `${result.scope}-hour`;
  return `${result.scope}-${result.windowSeconds}s`;
}

/**
 * The headers of docs/rate-limits-and-quotas.md for the buckets a request was checked against: `X-RateLimit-*` and
 * `RateLimit` describe the most restrictive bucket, `RateLimit-Policy` lists every bucket.
 * A refused request also gets `Retry-After`. Empty when no bucket applied.
 */
export function rateLimitHeaders(outcome: Pick<ConsumeResult, 'results' | 'allowed' | 'retryAfterSeconds'>): HeaderMap {
  const tightest = mostRestrictive(outcome.results);
  if (tightest === undefined) return {};
  const headers: HeaderMap = {
    'x-ratelimit-limit': tightest.limit,
    'x-ratelimit-remaining': tightest.remaining,
    'x-ratelimit-reset': tightest.resetSeconds,
    'ratelimit-policy': outcome.results.map((r) => `"${policyName(r)}";q=${r.rate};w=${r.windowSeconds}`).join(', '),
    ratelimit: `"${policyName(tightest)}";r=${tightest.remaining};t=${tightest.resetSeconds}`,
  };
  if (!outcome.allowed) headers['retry-after'] = outcome.retryAfterSeconds ?? 1;
  return headers;
}
