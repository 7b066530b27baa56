import { Counter, register } from 'prom-client';

/** Why a request failed authentication; never more precise in the response than in this label. */
export type AuthFailureReason = 'missing' | 'malformed' | 'unknown' | 'bad_secret' | 'revoked' | 'expired' | 'suspended' | 'scope';

/**
 * prom-client's registry is process-wide and a test may run two gateway instances in one
 * process, so each counter is fetched when it already exists.
 */
function counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
  return (register.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames });
}

export const authMetrics = () => ({
  failures: counter('gateway_auth_failures_total', 'Requests refused by authentication, by reason.', ['reason'] as Array<'reason'>),
  lookups: counter('gateway_auth_key_lookups_total', 'API-key database lookups on a key-cache miss, by result (found, unknown).', ['result'] as Array<'result'>),
});
