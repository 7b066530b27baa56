import type { Cluster, Redis } from 'ioredis';
import type { UsageService } from '../../usage/usage.service';
import type { UsagePeriod } from '../../usage/usage-period';
import type { AdmissionPlan, ScriptGroup } from '../admission-plan';
import { ADMIT_SCRIPT } from '../admission.scripts';
import { decideFromLevels } from '../token-bucket';
import { ADMIT_STATUS, type AdmissionPolicy, type PolicyDecision, QUOTA_OF_STATUS, type QuotaOutcome, decideQuotaLocally } from './admission-policy';

/** The admission script's reply for one group. */
export interface GroupReply {
  readonly status: number;
  readonly token: string;
  readonly requests: number;
  readonly dayRequests: number;
  readonly bytes: number;
  /** In the group's order (`ScriptGroup.order`). */
  readonly levels: readonly number[];
  /** The request was counted into the month view by this call. */
  readonly counted: boolean;
}

export async function runGroup(client: Redis | Cluster, group: ScriptGroup, period: UsagePeriod, withQuota: boolean): Promise<GroupReply> {
  const reply = (await ADMIT_SCRIPT.run(client, group.keys, group.argsFor(period, withQuota))) as (string | number)[];
  const status = Number(reply[0]);
  return {
    status,
    token: String(reply[1] ?? ''),
    requests: Number(reply[2]),
    dayRequests: Number(reply[3]),
    bytes: Number(reply[4]),
    levels: reply.slice(5).map(Number),
    counted: withQuota && group.quota !== undefined && status === ADMIT_STATUS.admitted,
  };
}

/** Each group's levels put back in the plan's bucket order. */
export function planLevels(plan: AdmissionPlan, groups: readonly ScriptGroup[], replies: readonly GroupReply[]): number[] {
  const levels = new Array<number>(plan.buckets.length);
  groups.forEach((group, g) => group.order.forEach((index, k) => (levels[index] = replies[g].levels[k])));
  return levels;
}

/** The quota part of a reply that checked the month view; remembers its figures for in-process decisions. */
export function quotaOfReply(usage: UsageService, plan: AdmissionPlan, period: UsagePeriod, reply: GroupReply): QuotaOutcome {
  usage.figures.observe(plan.quota!.tenantId, period.day, reply.token, reply.requests, reply.dayRequests, reply.bytes);
  return { exceeded: QUOTA_OF_STATUS[reply.status], requests: reply.requests, counted: reply.counted, token: reply.token, deferred: false };
}

/**
 * One server (standalone or behind Sentinel): every bucket of the request, the quota check and the
 * request count in ONE EVALSHA, atomic (`redis`). The first request of a tenant in a month, or the
 * first after Redis lost its data, finds no month view: it is built from PostgreSQL and the script
 * runs again. Should that fail (PostgreSQL down), the buckets are still decided by Redis and the
 * quota in process.
 */
export class RedisAdmissionPolicy implements AdmissionPolicy {
  readonly name = 'redis';

  constructor(
    private readonly client: Redis | Cluster,
    private readonly usage: UsageService,
  ) {}

  async admit(plan: AdmissionPlan, period: UsagePeriod): Promise<PolicyDecision> {
    const group = plan.groups[0];
    if (!group) return { rate: decideFromLevels([], [], 1), store: 'redis' };
    let reply = await runGroup(this.client, group, period, true);
    let quotaInProcess = false;
    if (reply.status === ADMIT_STATUS.unseeded) {
      const seeded = await this.usage.seedShared(plan.quota!.tenantId, period).then(
        () => true,
        () => false,
      );
      if (seeded) reply = await runGroup(this.client, group, period, true);
      if (reply.status === ADMIT_STATUS.unseeded) {
        reply = await runGroup(this.client, group, period, false);
        quotaInProcess = true;
      }
    }
    const levels = planLevels(plan, [group], [reply]);
    const rate = decideFromLevels(plan.buckets, levels, 1);
    if (!rate.allowed || !plan.quota) return { rate, levels, store: 'redis' };
    const quota = quotaInProcess ? decideQuotaLocally(plan.quota, this.usage.figures, period, 'fallback') : quotaOfReply(this.usage, plan, period, reply);
    return { rate, levels, quota, store: 'redis' };
  }
}
