import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { UsageService } from '../../usage/usage.service';
import { type UsagePeriod, usagePeriodOf } from '../../usage/usage-period';
import { type AdmissionBucket, type AdmissionPlan, bucketNumbers, hashExpiryMs } from '../admission-plan';
import { SYNC_SCRIPT, hashTagOf } from '../admission.scripts';
import { ThrottledFailureLog } from '../store-failure-log';
import { capacityOf, decideFromLevels, windowMsOf } from '../token-bucket';
import { type AdmissionPolicy, type Decided, type PolicyDecision, decideQuotaLocally } from './admission-policy';

interface SyncedBucket {
  readonly bucket: AdmissionBucket;
  /** Scaled level (token-bucket.ts) at `updatedAtMs` of this process's clock; may be below zero. */
  level: number;
  updatedAtMs: number;
  /** Tokens spent here since the last write-back was sent. */
  spent: number;
  /** Tokens of the write-back under way. */
  sending: number;
  lastUsedMs: number;
  /** When the level was last read from Redis: an older one is not decided on (see `stale`). */
  syncedAtMs: number;
}

/**
 * `rateLimit.policy: local-sync` (Kong's `sync_rate`): requests are decided in process, without a
 * round trip, against the shared level last read from Redis minus what this instance spent since;
 * every `intervalMs` the tokens spent are written back and the shared level read again, and the
 * routes' requests reach the shared month view in the usage batch.
 *
 * The price is drift: an instance decides on a level read at most two intervals ago and does not
 * see what the others spent since, so N instances may together admit beyond a limit up to what the
 * other N - 1 admit in that time, at most (N - 1) bursts; the shared level then goes below zero,
 * and that debt delays later admissions, so over any period longer than the window the rate holds
 * (docs/rate-limits-and-quotas.md has the measured figures). Quotas of such routes may be
 * overshot by what the other instances admitted within one usage batch interval.
 *
 * The first request of a bucket (or of a tenant's month) on an instance, and the first after it
 * idled for two intervals, goes the `exact` way, whose reply gives the levels; buckets unused for
 * a window are forgotten. While Redis is unavailable the instance keeps deciding from its own
 * state.
 */
export class LocalSyncAdmissionPolicy implements AdmissionPolicy {
  readonly name = 'local-sync';
  private readonly logger = new Logger('RateLimit');
  private readonly failureLog = new ThrottledFailureLog(10_000);
  private readonly states = new Map<string, SyncedBucket>();
  private timer?: NodeJS.Timeout;
  private syncing?: Promise<void>;

  constructor(
    private readonly exact: AdmissionPolicy,
    private readonly client: Redis | Cluster,
    private readonly usage: UsageService,
    private readonly intervalMs: number,
    private readonly cluster: boolean,
    private readonly clock: () => number = Date.now,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sync(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes back what is still unsent. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sync();
  }

  admit(plan: AdmissionPlan, period: UsagePeriod): Decided {
    const now = this.clock();
    const states: SyncedBucket[] = [];
    for (const bucket of plan.buckets) {
      const state = this.states.get(bucket.key);
      if (!state || this.stale(state, now)) return this.initialize(plan, period);
      states.push(state);
    }
    if (plan.quota && !this.usage.figures.current(plan.quota.tenantId, period.day)?.observed) return this.initialize(plan, period);
    const levels = states.map((state) => refilled(state, now));
    const rate = decideFromLevels(plan.buckets, levels, 1);
    if (!rate.allowed) return { rate, store: 'local' };
    states.forEach((state, i) => {
      state.level = levels[i] - windowMsOf(state.bucket);
      state.updatedAtMs = now;
      state.spent++;
      state.lastUsedMs = now;
    });
    if (!plan.quota) return { rate, store: 'local' };
    return { rate, quota: decideQuotaLocally(plan.quota, this.usage.figures, period, 'deferred'), store: 'local' };
  }

  /**
   * A level not read from Redis for two intervals while this instance spent nothing (an idle
   * tenant): the others may have spent it meanwhile, so the next decision is exact and reads it
   * again. A bucket in use is written back and read every interval.
   */
  private stale(state: SyncedBucket, now: number): boolean {
    return state.spent === 0 && state.sending === 0 && now - state.syncedAtMs > 2 * this.intervalMs;
  }

  /** One exact decision; its levels, read from Redis, are where this instance (re)starts from. */
  private async initialize(plan: AdmissionPlan, period: UsagePeriod): Promise<PolicyDecision> {
    const decision = await this.exact.admit(plan, period);
    const levels = decision.levels;
    if (decision.store === 'redis' && levels && decision.rate) {
      const now = this.clock();
      const admitted = decision.rate.allowed;
      plan.buckets.forEach((bucket, i) => {
        const level = admitted ? levels[i] - windowMsOf(bucket) : levels[i];
        const state = this.states.get(bucket.key);
        if (!state) {
          this.states.set(bucket.key, { bucket, level, updatedAtMs: now, spent: 0, sending: 0, lastUsedMs: now, syncedAtMs: now });
        } else if (state.spent === 0 && state.sending === 0) {
          // Nothing of this instance waits to be written: the shared level is the whole truth.
          Object.assign(state, { level, updatedAtMs: now, lastUsedMs: now, syncedAtMs: now });
        }
      });
    }
    return decision;
  }

  /** Writes back what was spent and reads the shared levels (one script call, one per slot on a cluster). */
  sync(): Promise<void> {
    this.syncing ??= this.syncNow().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async syncNow(): Promise<void> {
    const now = this.clock();
    // The buckets of a hash share its time field: a hash is written back whole or not at all.
    const byHash = new Map<string, SyncedBucket[]>();
    const due = new Set<string>();
    for (const [key, state] of this.states) {
      if (state.spent === 0 && now - state.lastUsedMs > state.bucket.windowSeconds * 1000) {
        this.states.delete(key);
        continue;
      }
      const hash = state.bucket.hash;
      const list = byHash.get(hash);
      if (list) list.push(state);
      else byHash.set(hash, [state]);
      if (state.spent > 0) due.add(hash);
    }
    if (due.size === 0) return;
    const period = usagePeriodOf(new Date());
    const groups = new Map<string, Map<string, SyncedBucket[]>>();
    for (const hash of due) {
      const states = byHash.get(hash)!;
      for (const state of states) {
        state.sending = state.spent;
        state.spent = 0;
      }
      const slot = this.cluster ? hashTagOf(hash) : '';
      let hashes = groups.get(slot);
      if (!hashes) groups.set(slot, (hashes = new Map()));
      hashes.set(hash, states);
    }
    await Promise.all([...groups.values()].map((hashes) => this.syncGroup(hashes, period)));
  }

  private async syncGroup(hashes: Map<string, SyncedBucket[]>, period: UsagePeriod): Promise<void> {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    const order: SyncedBucket[] = [];
    for (const [hash, states] of hashes) {
      keys.push(hash);
      args.push(hashExpiryMs(hash, period), states.length);
      for (const state of states) args.push(state.bucket.levelField);
      for (const state of states) {
        args.push(...bucketNumbers(state.bucket), state.sending);
        order.push(state);
      }
    }
    try {
      const levels = (await SYNC_SCRIPT.run(this.client, keys, args)) as number[];
      const now = this.clock();
      order.forEach((state, i) => {
        // What was spent while the write-back travelled is not in the shared level yet.
        state.level = Math.min(capacityOf(state.bucket), Number(levels[i])) - state.spent * windowMsOf(state.bucket);
        state.updatedAtMs = now;
        state.syncedAtMs = now;
        state.sending = 0;
      });
    } catch (error) {
      for (const state of order) {
        state.spent += state.sending;
        state.sending = 0;
      }
      const count = this.failureLog.failed();
      if (count !== undefined) this.logger.warn(`local-sync write-back failed ${count} time(s): ${(error as Error).message}; deciding in process`);
    }
  }
}

/** The level at `now` on this process's clock, refilled at the bucket's rate and capped at its burst. */
function refilled(state: SyncedBucket, now: number): number {
  const elapsed = Math.max(0, now - state.updatedAtMs);
  return Math.min(capacityOf(state.bucket), state.level + elapsed * state.bucket.rate);
}
