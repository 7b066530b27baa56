import type { Cluster } from 'ioredis';
import type { UsageService } from '../../usage/usage.service';
import type { UsagePeriod } from '../../usage/usage-period';
import { type AdmissionPlan, type ScriptGroup, bucketNumbers, viewFields } from '../admission-plan';
import { REFUND_SCRIPT } from '../admission.scripts';
import { decideFromLevels } from '../token-bucket';
import { ADMIT_STATUS, type AdmissionPolicy, type PolicyDecision, decideQuotaLocally } from './admission-policy';
import { type GroupReply, RedisAdmissionPolicy, planLevels, quotaOfReply, runGroup } from './redis.policy';

/**
 * Redis Cluster (`cluster`): a script may only touch keys of one slot, and a request's hashes live
 * in up to three (`{t:<tenant>}` with its buckets and month view, `{r:<route>}`, `{ip:<address>}`).
 * One admission script per slot, all sent at once: still one round trip of latency. Atomicity is
 * then per slot: when one slot refuses while others admitted, those are given their tokens back
 * (and the request uncounted) by the refund script, so a refused request consumes from none. In
 * between, another request may find those tokens missing: the error is towards refusing, never
 * towards admitting more than a limit. Any failed call fails the whole decision (after the
 * refunds), so `onStoreFailure` decides the request as it would on one server.
 */
export class ClusterAdmissionPolicy implements AdmissionPolicy {
  readonly name = 'cluster';
  private readonly oneSlot: RedisAdmissionPolicy;

  constructor(
    private readonly client: Cluster,
    private readonly usage: UsageService,
  ) {
    this.oneSlot = new RedisAdmissionPolicy(client, usage);
  }

  async admit(plan: AdmissionPlan, period: UsagePeriod): Promise<PolicyDecision> {
    const groups = plan.groups;
    if (groups.length <= 1) return this.oneSlot.admit(plan, period);
    const settled = await Promise.allSettled(groups.map((group) => runGroup(this.client, group, period, true)));
    const replies = settled.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : undefined));
    let failure = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')?.reason as unknown;
    let quotaInProcess = false;
    const q = groups.findIndex((group) => group.quota !== undefined);
    if (failure === undefined && q !== -1 && replies[q]!.status === ADMIT_STATUS.unseeded) {
      try {
        const seeded = await this.usage.seedShared(plan.quota!.tenantId, period).then(
          () => true,
          () => false,
        );
        if (seeded) replies[q] = await runGroup(this.client, groups[q], period, true);
        if (replies[q]!.status === ADMIT_STATUS.unseeded) {
          replies[q] = await runGroup(this.client, groups[q], period, false);
          quotaInProcess = true;
        }
      } catch (error) {
        failure = error;
        replies[q] = undefined;
      }
    }
    const refused = replies.some((reply) => reply?.status === ADMIT_STATUS.refused);
    if (failure !== undefined || refused) {
      const refunds = groups.map((group, g) => (consumed(replies[g]) ? this.refund(group, replies[g]!, period) : undefined));
      if (failure !== undefined) {
        // Best effort: the failure policy decides this request; the first cause is reported.
        await Promise.allSettled(refunds);
        throw failure;
      }
      await Promise.all(refunds);
    }
    const levels = planLevels(plan, groups, replies as GroupReply[]);
    // Every group admitted exactly when every level holds the cost, so this agrees with the scripts.
    const rate = decideFromLevels(plan.buckets, levels, 1);
    if (!rate.allowed || !plan.quota) return { rate, levels, store: 'redis' };
    const quota = quotaInProcess ? decideQuotaLocally(plan.quota, this.usage.figures, period, 'fallback') : quotaOfReply(this.usage, plan, period, replies[q]!);
    return { rate, levels, quota, store: 'redis' };
  }

  private async refund(group: ScriptGroup, reply: GroupReply, period: UsagePeriod): Promise<void> {
    await Promise.all(
      group.keys.map((key, k) => {
        const buckets = group.bucketsOf(k);
        const args: (string | number)[] = [buckets.length];
        for (const b of buckets) args.push(b.levelField);
        for (const b of buckets) args.push(...bucketNumbers(b));
        if (k === 0 && reply.counted) {
          const [seed, month, day] = viewFields(period);
          args.push('1', seed, reply.token, month, day);
        } else {
          args.push('0');
        }
        return REFUND_SCRIPT.run(this.client, [key], args);
      }),
    );
  }
}

/** The call took tokens (and maybe counted the request): what a refund must give back. */
function consumed(reply: GroupReply | undefined): boolean {
  return reply !== undefined && reply.status !== ADMIT_STATUS.refused && reply.status !== ADMIT_STATUS.unseeded;
}
