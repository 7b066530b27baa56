import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import type { PiggybackRead } from '../rate-limit/token-bucket-throttler.storage';
import { ThrottledFailureLog } from '../rate-limit/store-failure-log';
import { RedisService } from '../redis/redis.service';
import { RedisUsageCounterStore, UsageKeys, parseMonthView } from './redis-usage-counter.store';
import {
  LocalUsageCounterStore,
  type MonthView,
  type UsageCounterStore,
  type UsageDelta,
} from './usage-counter.store';
import { type UsagePeriod, dayOfMonth, usagePeriodOf } from './usage-period';
import { type DailyUsageRow, type FlushBatch, UsageRepository } from './usage.repository';

/** A tenant's usage of one month, as the quota check and the usage API see it. */
export interface UsageSnapshot extends UsageDelta {
  readonly dayRequests: number;
  readonly period: UsagePeriod;
  /** False when the shared store did not answer and the figures are this instance's best knowledge. */
  readonly exact: boolean;
}

interface OutageDelta {
  readonly tenantId: string;
  readonly month: string;
  /** Seed token of the month view this instance last saw; the replay applies only to that view. */
  readonly token?: string;
  requests: number;
  bytesIn: number;
  bytesOut: number;
  readonly days: Map<string, number>;
}

const SEED_ATTEMPTS = 5;
/** The sweep for orphaned pending deltas (of instances that died) runs every this many flushes. */
const SWEEP_EVERY_FLUSHES = 12;
const PRUNE_EVERY_MS = 3_600_000;
const FLUSH_INTERVAL_NAME = 'usage-flush';

/**
 * Usage counters (docs/rate-limits-and-quotas.md): shared in Redis, durable in PostgreSQL `usage_counters`.
 *
 * Hot path, per proxied request: the month view is read by the rate limiter in its own round
 * trip (`prefetchRead`/`acceptPrefetch`), and `record()` adds the request after the response with
 * one EVALSHA (month view + pending deltas). Nothing else touches Redis or PostgreSQL per request,
 * except the first request of a tenant in a month (or after Redis lost its data), which seeds the
 * month view from PostgreSQL.
 *
 * Every `usage.flushIntervalSeconds`, the pending deltas go to PostgreSQL exactly once (batch ids,
 * see usage.scripts.ts and migration 003). A graceful shutdown waits for increments in flight and
 * flushes; a crash loses at most the deltas of one interval.
 *
 * Redis unreachable: increments go to an in-process buffer flushed straight to PostgreSQL (so they
 * stay durable), quota checks use the last month view this instance saw plus its own increments
 * since (or allow, having seen none), and when Redis answers again the buffered amounts are added
 * to the shared month view they were missing from.
 */
@Injectable()
export class UsageService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Usage');
  /** Whole store without Redis; outage buffer (pending deltas only) with Redis. */
  private readonly local = new LocalUsageCounterStore();
  private readonly shared?: RedisUsageCounterStore;
  /** Tenants this instance added to in Redis since the last flush. */
  private readonly dirty = new Set<string>();
  private readonly prefetched = new WeakMap<object, { tenantId: string; month: string; view: MonthView }>();
  private readonly increments = new Set<Promise<void>>();
  private readonly seeding = new Map<string, Promise<MonthView>>();
  private readonly lastKnown = new Map<string, MonthView>();
  /** Everything counted in process since Redis stopped answering, per tenant and month. */
  private readonly outage = new Map<string, OutageDelta>();
  /** Of those, what was written straight to PostgreSQL and still lacks in the shared month view. */
  private readonly replays = new Map<string, OutageDelta>();
  private readonly failureLog = new ThrottledFailureLog(10_000);
  private flushing?: Promise<void>;
  private flushes = 0;
  private lastPruneAt = 0;

  constructor(
    private readonly redis: RedisService,
    private readonly repository: UsageRepository,
    private readonly config: GatewayConfig,
    private readonly scheduler: SchedulerRegistry,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    if (redis.client) this.shared = new RedisUsageCounterStore(redis.client, new UsageKeys(redis.prefix));
  }

  onApplicationBootstrap(): void {
    const interval = setInterval(() => void this.flush(), this.config.usage.flushIntervalSeconds * 1000);
    this.scheduler.addInterval(FLUSH_INTERVAL_NAME, interval);
  }

  /**
   * Before the database and Redis pools close (their hooks run in onApplicationShutdown): wait for
   * the increments in flight, then flush everything this instance knows of.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.scheduler.doesExist('interval', FLUSH_INTERVAL_NAME)) this.scheduler.deleteInterval(FLUSH_INTERVAL_NAME);
    await this.settled();
    await this.flushing;
    await this.flush();
  }

  /** The month view's HMGET for the rate limiter's round trip; undefined in single-instance mode. */
  prefetchRead(tenantId: string, now: Date): PiggybackRead | undefined {
    return this.shared?.monthRead(tenantId, usagePeriodOf(now));
  }

  /** Keeps the reply of `prefetchRead` for the quota check of the same request. */
  acceptPrefetch(request: object, tenantId: string, now: Date, reply: readonly (string | null)[] | undefined): void {
    if (reply === undefined) return;
    const view = parseMonthView(reply);
    if (view === undefined) return; // not seeded: the quota check seeds it
    const month = usagePeriodOf(now).month;
    this.lastKnown.set(`${tenantId}|${month}`, view);
    this.prefetched.set(request, { tenantId, month, view });
  }

  /**
   * The tenant's usage this month from the request's prefetch (the rate limiter's round trip),
   * without waiting for anything; undefined when there is none.
   */
  prefetchedSnapshot(tenantId: string, now: Date, request: object): UsageSnapshot | undefined {
    const kept = this.prefetched.get(request);
    if (!kept || kept.tenantId !== tenantId) return undefined;
    const period = usagePeriodOf(now);
    return kept.month === period.month ? this.withOutage(tenantId, period, kept.view, true) : undefined;
  }

  /** The tenant's usage this month, from the request's prefetch when there is one. */
  async snapshot(tenantId: string, now: Date, request?: object): Promise<UsageSnapshot> {
    const kept = request ? this.prefetchedSnapshot(tenantId, now, request) : undefined;
    if (kept) return kept;
    const period = usagePeriodOf(now);
    if (!this.shared) {
      try {
        return this.withOutage(tenantId, period, await this.viewOf(this.local, tenantId, period), true);
      } catch (error) {
        this.failed('postgres', error as Error);
        return this.withOutage(tenantId, period, undefined, false);
      }
    }
    try {
      if (!this.redis.ready) throw new Error(`connection is ${this.redis.client?.status}`);
      const view = await this.viewOf(this.shared, tenantId, period);
      this.lastKnown.set(`${tenantId}|${period.month}`, view);
      return this.withOutage(tenantId, period, view, true);
    } catch (error) {
      this.failed('redis', error as Error);
      return this.withOutage(tenantId, period, this.lastKnown.get(`${tenantId}|${period.month}`), false);
    }
  }

  /** Counts a finished (or aborted) request. Never throws; the promise is tracked for shutdown. */
  record(tenantId: string, delta: UsageDelta, now: Date = new Date()): void {
    const day = usagePeriodOf(now).day;
    if (!this.shared) {
      void this.local.add(tenantId, day, delta);
      return;
    }
    if (!this.redis.ready) {
      this.failed('redis', new Error(`connection is ${this.redis.client?.status}`));
      this.recordLocally(tenantId, day, delta);
      return;
    }
    const increment = this.shared.add(tenantId, day, delta).then(
      () => {
        this.dirty.add(tenantId);
      },
      (error: Error) => {
        // A timed-out increment may still have run: counting it again errs towards the tenant
        // paying for a request twice rather than a request going uncounted.
        this.failed('redis', error);
        this.recordLocally(tenantId, day, delta);
      },
    );
    this.increments.add(increment);
    void increment.finally(() => this.increments.delete(increment));
  }

  /** Resolves when every increment sent so far has been answered. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.increments]);
  }

  /** Writes pending deltas to PostgreSQL; concurrent callers share one run. */
  flush(): Promise<void> {
    this.flushing ??= this.flushAll().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Flushes one tenant at once (before reports and resets), whoever holds its deltas. */
  async flushTenant(tenantId: string): Promise<void> {
    await this.settled();
    if (this.shared && this.redis.ready) await this.flushStore(this.shared, [tenantId], (tenant) => this.dirty.add(tenant));
    const direct = await this.flushStore(this.local, [tenantId]);
    if (this.shared) this.noteReplays(direct);
  }

  /** Per-day rows from PostgreSQL after flushing the tenant's pending deltas. */
  async daily(tenantId: string, from: string, to: string): Promise<DailyUsageRow[]> {
    await this.flushTenant(tenantId);
    return this.repository.daily(tenantId, from, to);
  }

  /** Zeroes the tenant's current month everywhere; returns what it held. */
  async resetMonth(tenantId: string, now: Date = new Date()): Promise<UsageDelta> {
    const period = usagePeriodOf(now);
    await this.flushTenant(tenantId);
    const before = await this.repository.deleteMonth(tenantId, dateOf(period.monthStart), dateOf(period.monthEnd));
    if (this.shared) await this.shared.reset(tenantId, period);
    await this.local.reset(tenantId, period);
    this.lastKnown.delete(`${tenantId}|${period.month}`);
    this.outage.delete(`${tenantId}|${period.month}`);
    this.replays.delete(`${tenantId}|${period.month}`);
    return before;
  }

  storageUsed(tenantId: string): Promise<number> {
    return this.repository.storageUsed(tenantId);
  }

  private async flushAll(): Promise<void> {
    this.flushes++;
    if (!this.shared) {
      await this.flushStore(this.local, this.local.dirtyTenants());
    } else if (!this.redis.ready) {
      // Keep what was counted during the outage durable: straight to PostgreSQL.
      this.noteReplays(await this.flushStore(this.local, this.local.dirtyTenants()));
    } else {
      await this.handOver(this.shared);
      const tenants = new Set(this.dirty);
      this.dirty.clear();
      if (this.flushes % SWEEP_EVERY_FLUSHES === 1) {
        try {
          for (const tenant of await this.shared.unflushedTenants()) tenants.add(tenant);
        } catch (error) {
          this.failed('redis', error as Error);
        }
      }
      await this.flushStore(this.shared, [...tenants], (tenant) => this.dirty.add(tenant));
    }
    if (Date.now() - this.lastPruneAt > PRUNE_EVERY_MS) {
      this.lastPruneAt = Date.now();
      await this.repository.pruneBatches(new Date(Date.now() - 86_400_000)).catch((error: Error) => this.failed('postgres', error));
    }
  }

  /**
   * Redis answers again: hands over what this instance counted in process meanwhile. Deltas that
   * never left the process go to Redis like ordinary increments (month view + pending); a batch
   * that was being written to PostgreSQL is finished there (exactly once), and what reached
   * PostgreSQL directly is added to the month views seeded before it (a view rebuilt since then
   * was built from PostgreSQL and holds it already).
   */
  private async handOver(store: RedisUsageCounterStore): Promise<void> {
    try {
      for (const tenantId of this.local.dirtyTenants()) {
        const inflight = this.local.inflightOf(tenantId);
        if (inflight) {
          const done = await this.flushBatches(this.local, [{ tenantId, ...inflight }]);
          if (done.length === 0) return; // PostgreSQL failed: retried at the next flush
          this.noteReplays(done);
        }
        const batch = await this.local.take(tenantId);
        if (batch) {
          await store.addMany(tenantId, batch.rows);
          await this.local.finish(tenantId, batch.batchId);
        }
      }
      for (const [key, replay] of [...this.replays]) {
        if (replay.token !== undefined) await store.replay(replay.tenantId, replay.month, replay.token, amountFields(replay));
        this.replays.delete(key);
      }
      this.outage.clear();
    } catch (error) {
      this.failed('redis', error as Error);
    }
  }

  /** Remembers amounts written straight to PostgreSQL, for the month views that lack them. */
  private noteReplays(batches: readonly FlushBatch[]): void {
    for (const batch of batches) {
      for (const row of batch.rows) {
        const key = `${batch.tenantId}|${row.day.slice(0, 7)}`;
        let replay = this.replays.get(key);
        if (!replay) {
          const token = this.outage.get(key)?.token ?? this.lastKnown.get(key)?.token;
          replay = { tenantId: batch.tenantId, month: row.day.slice(0, 7), token, requests: 0, bytesIn: 0, bytesOut: 0, days: new Map() };
          this.replays.set(key, replay);
        }
        addAmounts(replay, row.day, row);
      }
    }
  }

  /**
   * take → apply in one PostgreSQL transaction → finish. A failure leaves the batch inflight in
   * its store, to be retried (with the same id, so at most once in PostgreSQL) at the next flush.
   * Returns the batches that reached PostgreSQL.
   */
  private async flushStore(store: UsageCounterStore, tenants: readonly string[], retryLater: (tenant: string) => void = () => undefined): Promise<FlushBatch[]> {
    const batches: FlushBatch[] = [];
    for (const tenantId of tenants) {
      try {
        const batch = await store.take(tenantId);
        if (batch) batches.push({ tenantId, ...batch });
      } catch (error) {
        this.failed('redis', error as Error);
        retryLater(tenantId);
      }
    }
    return this.flushBatches(store, batches, retryLater);
  }

  private async flushBatches(store: UsageCounterStore, batches: readonly FlushBatch[], retryLater: (tenant: string) => void = () => undefined): Promise<FlushBatch[]> {
    if (batches.length === 0) return [];
    try {
      await this.repository.applyBatches(batches);
    } catch (error) {
      this.failed('postgres', error as Error);
      for (const batch of batches) retryLater(batch.tenantId);
      return [];
    }
    for (const batch of batches) {
      try {
        await store.finish(batch.tenantId, batch.batchId);
      } catch (error) {
        // Applied but still inflight: the retry finds its id in PostgreSQL and adds nothing.
        this.failed('redis', error as Error);
        retryLater(batch.tenantId);
      }
    }
    return [...batches];
  }

  /** The month view, seeding it from PostgreSQL first when absent (one caller per tenant-month). */
  private async viewOf(store: UsageCounterStore, tenantId: string, period: UsagePeriod): Promise<MonthView> {
    const view = await store.readMonth(tenantId, period);
    if (view) return view;
    const key = `${store === this.local ? 'l' : 'r'}|${tenantId}|${period.month}`;
    let seeding = this.seeding.get(key);
    if (!seeding) {
      seeding = this.seed(store, tenantId, period).finally(() => this.seeding.delete(key));
      this.seeding.set(key, seeding);
    }
    return seeding;
  }

  /**
   * Rebuilds a month view: PostgreSQL's rows + the deltas not yet flushed. Reads the store's
   * generation and inflight batch first, then PostgreSQL (rows and "is that batch applied" in one
   * statement); the seed refuses if a flush moved amounts meanwhile, and is retried.
   */
  private async seed(store: UsageCounterStore, tenantId: string, period: UsagePeriod): Promise<MonthView> {
    for (let attempt = 0; attempt < SEED_ATTEMPTS; attempt++) {
      const state = await store.seedState(tenantId);
      const { base, batchApplied } = await this.repository.monthBase(tenantId, dateOf(period.monthStart), dateOf(period.monthEnd), state.inflightBatch);
      const outcome = await store.seed(tenantId, period, base, batchApplied ? { gen: state.gen } : state);
      if (outcome === 'stale') continue;
      const view = await store.readMonth(tenantId, period);
      if (view) return view;
    }
    throw new Error(`usage of tenant ${tenantId} for ${period.month} could not be seeded (flushes kept racing)`);
  }

  private recordLocally(tenantId: string, day: string, delta: UsageDelta): void {
    void this.local.add(tenantId, day, delta);
    const month = day.slice(0, 7);
    const key = `${tenantId}|${month}`;
    let entry = this.outage.get(key);
    if (!entry) {
      entry = { tenantId, month, token: this.lastKnown.get(key)?.token, requests: 0, bytesIn: 0, bytesOut: 0, days: new Map() };
      this.outage.set(key, entry);
    }
    addAmounts(entry, day, delta);
  }

  private withOutage(tenantId: string, period: UsagePeriod, view: MonthView | undefined, exact: boolean): UsageSnapshot {
    const extra = this.outage.get(`${tenantId}|${period.month}`);
    const sameView = extra !== undefined && (view === undefined || extra.token === view.token);
    return {
      period,
      exact,
      requests: (view?.requests ?? 0) + (sameView ? extra.requests : 0),
      bytesIn: (view?.bytesIn ?? 0) + (sameView ? extra.bytesIn : 0),
      bytesOut: (view?.bytesOut ?? 0) + (sameView ? extra.bytesOut : 0),
      dayRequests: (view?.dayRequests ?? 0) + (sameView ? (extra.days.get(dayOfMonth(period.day)) ?? 0) : 0),
    };
  }

  private failed(store: 'redis' | 'postgres', error: Error): void {
    this.metrics?.storeError(store);
    const count = this.failureLog.failed();
    if (count !== undefined) this.logger.warn(`usage counters: ${store} failed ${count} time(s): ${error.message}`);
  }
}

function addAmounts(target: OutageDelta, day: string, delta: UsageDelta): void {
  target.requests += delta.requests;
  target.bytesIn += delta.bytesIn;
  target.bytesOut += delta.bytesOut;
  const dd = dayOfMonth(day);
  target.days.set(dd, (target.days.get(dd) ?? 0) + delta.requests);
}

function amountFields(amounts: OutageDelta): (string | number)[] {
  const fields: (string | number)[] = ['r', amounts.requests, 'bi', amounts.bytesIn, 'bo', amounts.bytesOut];
  for (const [dd, n] of amounts.days) fields.push(`r:${dd}`, n);
  return fields;
}

function dateOf(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}

