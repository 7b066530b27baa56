import type { QuotaName } from '../../quotas/quota-evaluation';
import { evaluateRequestQuotas } from '../../quotas/quota-evaluation';
import type { UsageFigures } from '../../usage/usage-figures';
import type { UsagePeriod } from '../../usage/usage-period';
import type { AdmissionPlan, QuotaPlan } from '../admission-plan';
import type { ConsumeResult } from '../token-bucket';

/** The quota part of a decision (present when the plan counts toward a quota and the buckets admitted). */
export interface QuotaOutcome {
  readonly exceeded?: QuotaName;
  /** Monthly requests used, this request included when it was counted. */
  readonly requests: number;
  readonly counted: boolean;
  /** Seed token of the month view it was counted into; '' when it is counted in process only. */
  readonly token: string;
  /** Counted in process, to be added to the shared view with the next batch (`local-sync`). */
  readonly deferred: boolean;
}

export interface PolicyDecision {
  /** One result per plan bucket; undefined when the buckets were not checked (`onStoreFailure: allow`). */
  readonly rate?: ConsumeResult;
  /** Each bucket's level before this request, when a shared store reported it (`local-sync` starts from them). */
  readonly levels?: readonly number[];
  readonly quota?: QuotaOutcome;
  /** Which store decided: `none` = nothing was checked. */
  readonly store: 'redis' | 'local' | 'none';
  /** `onStoreFailure: deny` while the store is down: answered 503 `unavailable`. */
  readonly storeUnavailable?: boolean;
}

/** A decision, synchronous when it needed no I/O. */
export type Decided = PolicyDecision | Promise<PolicyDecision>;

/**
 * Interchangeable ways of keeping the buckets and the request count (Kong's rate-limiting
 * policies): `local` (in process), `redis` (one atomic script), `cluster` (one script per hash slot,
 * concurrently), `local-sync` (in process, written back to Redis every interval), and `failover`,
 * which applies `rateLimit.onStoreFailure` around a shared one. The same scenario table runs
 * against each of them (test/rate-limit-policies.e2e-spec.ts).
 */
export interface AdmissionPolicy {
  readonly name: 'local' | 'redis' | 'cluster' | 'local-sync' | 'failover';
  admit(plan: AdmissionPlan, period: UsagePeriod): Decided;
}

/**
 * How a quota decided in process counts the request: into the in-process month view of
 * single-instance mode (`view`), as a count the shared view lacks until the journal is replayed
 * (`fallback`, Redis unavailable), or as a count the next batch adds to the shared view (`deferred`,
 * `local-sync`).
 */
export type LocalQuotaMode = 'view' | 'fallback' | 'deferred';

/**
 * The quota check made in process, from what this instance knows (the shared view as last seen,
 * plus its own unsynced counts): used when Redis is unavailable, by `local-sync` routes, and as
 * the whole truth in single-instance mode. Admitted requests are counted at once, so the next
 * decision of this instance sees them. A tenant never seen this month is admitted (fails open).
 */
export function decideQuotaLocally(quota: QuotaPlan, figures: UsageFigures, period: UsagePeriod, mode: LocalQuotaMode): QuotaOutcome {
  const known = figures.current(quota.tenantId, period.day);
  const usage = { requests: known?.requests ?? 0, dayRequests: known?.dayRequests ?? 0, bytesIn: known?.bytes ?? 0, bytesOut: 0 };
  const deferred = mode === 'deferred';
  const verdict = evaluateRequestQuotas(quota.limits, usage, 0);
  if (verdict.exceeded) return { exceeded: verdict.exceeded, requests: usage.requests, counted: false, token: '', deferred };
  figures.addUnsynced(quota.tenantId, period.day, 1, 0);
  return { requests: usage.requests + 1, counted: true, token: mode === 'view' ? (known?.token ?? '') : '', deferred };
}

/** The status codes of the admission script's reply (admission.scripts.ts). */
export const ADMIT_STATUS = { refused: 0, admitted: 1, unseeded: 2, monthly: 3, daily: 4, bandwidth: 5 } as const;

export const QUOTA_OF_STATUS: Record<number, QuotaName | undefined> = {
  [ADMIT_STATUS.monthly]: 'monthlyRequests',
  [ADMIT_STATUS.daily]: 'dailyRequests',
  [ADMIT_STATUS.bandwidth]: 'monthlyBandwidthBytes',
};
