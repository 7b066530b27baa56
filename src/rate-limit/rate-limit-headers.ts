import type { HeaderPairs } from './admission.types';
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

/** `RateLimit-Policy` for these buckets: one item per bucket. */
export function policyHeaderOf(results: readonly Pick<BucketResult, 'scope' | 'windowSeconds' | 'rate'>[]): string {
  return results.map((r) => `"${policyName(r)}";q=${r.rate};w=${r.windowSeconds}`).join(', ');
}

/**
 * The headers of docs/rate-limits-and-quotas.md for the buckets a caller was checked against:
 * `X-RateLimit-*` and `RateLimit` describe the most restrictive bucket, `RateLimit-Policy` (built
 * once per plan and passed in) lists every bucket. A refusal also gets `Retry-After`. Empty when
 * no bucket applied.
 */
export function rateLimitHeaderPairs(policyHeader: string | undefined, results: readonly BucketResult[], retryAfterSeconds?: number): HeaderPairs {
  const tightest = mostRestrictive(results);
  if (tightest === undefined || policyHeader === undefined) return retryAfterSeconds === undefined ? [] : [['retry-after', String(retryAfterSeconds)]];
  const remaining = String(tightest.remaining);
  const reset = String(tightest.resetSeconds);
  const pairs: [string, string][] = [
    ['x-ratelimit-limit', String(tightest.limit)],
    ['x-ratelimit-remaining', remaining],
    ['x-ratelimit-reset', reset],
    ['ratelimit-policy', policyHeader],
    ['ratelimit', `"${policyName(tightest)}";r=${remaining};t=${reset}`],
  ];
  if (retryAfterSeconds !== undefined) pairs.push(['retry-after', String(retryAfterSeconds)]);
  return pairs;
}

/** The same headers as a map, for one decision over `results` (every bucket shown). */
export function rateLimitHeaders(outcome: Pick<ConsumeResult, 'results' | 'allowed' | 'retryAfterSeconds'>): HeaderMap {
  const pairs = rateLimitHeaderPairs(
    outcome.results.length > 0 ? policyHeaderOf(outcome.results) : undefined,
    outcome.results,
    outcome.allowed || outcome.results.length === 0 ? undefined : (outcome.retryAfterSeconds ?? 1),
  );
  const headers: HeaderMap = {};
  for (const [name, value] of pairs) headers[name] = /^\d+$/.test(value) ? Number(value) : value;
  return headers;
}

/** Header pairs as the map GatewayException takes. */
export function headerMapOf(pairs: HeaderPairs): HeaderMap {
  const headers: HeaderMap = {};
  for (const [name, value] of pairs) headers[name] = value;
  return headers;
}
