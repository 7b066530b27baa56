import type { UsageService } from '../../usage/usage.service';
import type { UsagePeriod } from '../../usage/usage-period';
import type { AdmissionPlan } from '../admission-plan';
import { LocalTokenBucketStore } from '../local-token-bucket.store';
import { type AdmissionPolicy, type Decided, type PolicyDecision, decideQuotaLocally } from './admission-policy';

/**
 * In-process buckets and quota (`local`): the whole store in single-instance mode (no Redis), where
 * the month view is seeded from PostgreSQL on first use, and the `onStoreFailure: local` policy,
 * where each instance enforces the same limits on its own until Redis answers again (N instances
 * then admit up to N times a limit) and checks quotas against the shared view as last seen plus
 * its own counts since. Decides without a promise once the month view is known.
 */
export class LocalAdmissionPolicy implements AdmissionPolicy {
  readonly name = 'local';
  readonly buckets = new LocalTokenBucketStore();

  constructor(
    private readonly usage: UsageService,
    /** True in single-instance mode: the in-process month view is the truth and is seeded first. */
    private readonly authoritative: boolean,
  ) {}

  admit(plan: AdmissionPlan, period: UsagePeriod): Decided {
    const quota = plan.quota;
    if (this.authoritative && quota && !this.usage.figures.current(quota.tenantId, period.day)?.observed) {
      // Seed before any token is taken, so the decision after it is the only one.
      return this.usage.seedLocal(quota.tenantId, period).then(
        () => this.decide(plan, period),
        () => this.decide(plan, period),
      );
    }
    return this.decide(plan, period);
  }

  private decide(plan: AdmissionPlan, period: UsagePeriod): PolicyDecision {
    const rate = this.buckets.consumeNow(plan.buckets);
    if (!rate.allowed || !plan.quota) return { rate, store: 'local' };
    return { rate, quota: decideQuotaLocally(plan.quota, this.usage.figures, period, this.authoritative ? 'view' : 'fallback'), store: 'local' };
  }
}
