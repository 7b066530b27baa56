import type { UsagePeriod } from './usage-period';

/*
 * The tenant's month view inside its hash in Redis, which the admission store's one script writes
 * (a request counted at admission) and the usage store reads, seeds and settles: both sides name
 * the hash and its fields here, so they cannot drift apart.
 */

/** A month view outlives its month by this much, for requests that straddle midnight. */
export const MONTH_VIEW_GRACE_MS = 3 * 86_400_000;

/** The tenant's hash: its rate-limit buckets and its month view share the slot `{t:<id>}`. */
export function tenantHashKey(keyPrefix: string, tenantId: string): string {
  return `${keyPrefix}a:{t:${tenantId}}`;
}

/** The month view's fields read and written on the request path, in the scripts' order. */
export function viewFields(period: UsagePeriod): [seed: string, month: string, day: string, bytes: string] {
  const m = period.month;
  return [`s:${m}`, `r:${m}`, `r:${period.day}`, `by:${m}`];
}
