import { randomBytes } from 'node:crypto';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import type { AdmissionTicket, SettleFigures } from '../rate-limit/admission.types';
import { ThrottledFailureLog } from '../rate-limit/store-failure-log';
import { RedisService } from '../redis/redis.service';
import { UsageFigures } from './usage-figures';
import { type JournalBatch, UsageJournal, rowsOf } from './usage-journal';
import { type UsagePeriod, usagePeriodOf } from './usage-period';
import { type DailyUsageRow, type UsageExportCursor, type UsageExportRow, UsageRepository } from './usage.repository';
import { type ReplayItem, type SettleEntry, UsageViewStore } from './usage-view.store';

/** A tenant's usage of one month, as the usage API and reports see it. */
export interface UsageSnapshot {
  readonly period: UsagePeriod;
  readonly requests: number;
  readonly dayRequests: number;
  /** Request + response bytes. */
  readonly bytes: number;
  /** False when the shared view did not answer and the figures are this instance's best knowledge. */
  readonly exact: boolean;
}

const SEED_ATTEMPTS = 5;
const PRUNE_EVERY_MS = 3_600_000;
/** Replays waiting for Redis are dropped beyond this (PostgreSQL has them; only the view would lag). */
const MAX_QUEUED_REPLAYS = 10_000;
const FLUSH_INTERVAL_NAME = 'usage-flush';
const BATCH_INTERVAL_NAME = 'usage-batch';

/**
 * Usage accounting (docs/rate-limits-and-quotas.md). A request is counted into the tenant's shared
 * month view by the admission script (the rate limiter's one round trip); everything that is known
 * only once the response is over (bytes, renders, refunds of the gateway's own 5xx, and the
 * requests of `local-sync` routes) is added here: to this instance's journal at once, and to the
 * shared view in batches every `usage.batchIntervalMs`. Nothing per request goes to Redis here.
 *
 * Durability: each instance writes its own journal to PostgreSQL every `usage.flushIntervalSeconds`
 * (exactly once, batch ids of migration 003), so a Redis restart loses no count, a graceful
 * shutdown writes everything and a crash loses at most one flush interval. After each flush the
 * amounts are replayed into a view rebuilt meanwhile (usage.scripts.ts), so views rebuilt from
 * PostgreSQL (first use of a month, Redis lost its data) count nothing twice and miss nothing.
 *
 * Without Redis (single-instance mode) the month views live in process (`figures`), seeded from
 * PostgreSQL on first use, with the same journal.
 */
@Injectable()
export class UsageService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Usage');
  /** What this instance knows of each tenant's month (see UsageFigures). */
  readonly figures = new UsageFigures();
  private readonly journal = new UsageJournal();
  private readonly views?: UsageViewStore;
  private batch = new Map<string, SettleEntry>();
  private sending?: Promise<void>;
  private replays: ReplayItem[] = [];
  private readonly seeding = new Map<string, Promise<void>>();
  private readonly failureLog = new ThrottledFailureLog(10_000);
  private flushing?: Promise<void>;
  /** Writes to PostgreSQL run one at a time, so a batch is never written (and replayed) twice at once. */
  private writing: Promise<void> = Promise.resolve();
  private lastPruneAt = 0;

  constructor(
    private readonly redis: RedisService,
    private readonly repository: UsageRepository,
    private readonly config: GatewayConfig,
    private readonly scheduler: SchedulerRegistry,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    if (redis.client) {
      this.views = new UsageViewStore(redis.client, redis.prefix);
      // Back after an outage: what was counted in process reaches the shared views at once.
      redis.client.on('ready', () => {
        if (!this.journal.empty || this.replays.length > 0) void this.flush();
      });
    }
  }

  /** True when month views are shared through Redis. */
  get shared(): boolean {
    return this.views !== undefined;
  }

  onApplicationBootstrap(): void {
    const flush = setInterval(() => void this.flush(), this.config.usage.flushIntervalSeconds * 1000);
    this.scheduler.addInterval(FLUSH_INTERVAL_NAME, flush);
    if (this.views) {
      const batch = setInterval(() => void this.sendBatch(), this.config.usage.batchIntervalMs);
      this.scheduler.addInterval(BATCH_INTERVAL_NAME, batch);
    }
  }

  /**
   * Before the database and Redis pools close (their hooks run in onApplicationShutdown; the HTTP
   * server has drained by then): the last batch, then the journal, then the replays.
   */
  async beforeApplicationShutdown(): Promise<void> {
    for (const name of [FLUSH_INTERVAL_NAME, BATCH_INTERVAL_NAME]) {
      if (this.scheduler.doesExist('interval', name)) this.scheduler.deleteInterval(name);
    }
    await this.settled();
    await this.flushing;
    await this.flush();
  }

  /**
   * Builds the tenant's shared month view from PostgreSQL (one caller per tenant and month; the
   * others wait for it). Retried when a flush committed between the read and the write.
   */
  seedShared(tenantId: string, period: UsagePeriod): Promise<void> {
    const views = this.views;
    if (!views) return this.seedLocal(tenantId, period);
    return this.once(`r|${tenantId}|${period.month}`, async () => {
      for (let attempt = 0; attempt < SEED_ATTEMPTS; attempt++) {
        const { base, version } = await this.repository.monthBase(tenantId, dateOf(period.monthStart), dateOf(period.monthEnd));
        if ((await views.seed(tenantId, period, base, version)) !== 'stale') return;
      }
      throw new Error(`usage of tenant ${tenantId} for ${period.month} could not be seeded (flushes kept racing)`);
    });
  }

  /** Single-instance mode: the month view in process, from PostgreSQL plus nothing counted yet. */
  seedLocal(tenantId: string, period: UsagePeriod): Promise<void> {
    return this.once(`l|${tenantId}|${period.month}`, async () => {
      if (this.figures.current(tenantId, period.day)?.observed) return;
      const { base } = await this.repository.monthBase(tenantId, dateOf(period.monthStart), dateOf(period.monthEnd));
      this.figures.observe(tenantId, period.day, localToken(), base.requests, base.days[period.day] ?? 0, base.bytesIn + base.bytesOut);
    });
  }

  /**
   * Adds what a finished (or aborted) response adds to its request's count: never a round trip of
   * its own (the journal at once, the shared view with the next batch).
   */
  settle(ticket: AdmissionTicket, figures: SettleFigures): void {
    const { tenantId, day, token, deferred } = ticket;
    const refund = figures.gatewayError;
    const bytes = figures.bytesIn + figures.bytesOut;
    const renders = figures.render && !refund ? 1 : 0;
    if (!this.views) {
      this.figures.addUnsynced(tenantId, day, refund ? -1 : 0, bytes);
      this.journal.add(tenantId, day, token, { requests: refund ? 0 : 1, bytesIn: figures.bytesIn, bytesOut: figures.bytesOut, renders });
      return;
    }
    // Counted into the view `token` at admission: the journal takes it under that tag now.
    if (!refund && !deferred) this.journal.add(tenantId, day, token, { requests: 1, renders });
    else if (renders) this.journal.add(tenantId, day, token, { renders });
    if (refund && (deferred || token === '')) {
      // Counted in process only: uncounting is local too.
      this.figures.addUnsynced(tenantId, day, -1, 0);
    } else if (refund) {
      this.entryOf(tenantId, day, token).refunds++;
    } else if (deferred) {
      this.entryOf(tenantId, day, '').newRequests++;
    }
    if (bytes > 0) {
      const entry = this.entryOf(tenantId, day, deferred ? '' : token);
      entry.bytesIn += figures.bytesIn;
      entry.bytesOut += figures.bytesOut;
      this.figures.addUnsynced(tenantId, day, 0, bytes);
    }
  }

  /** Resolves once every outcome settled so far has been sent to the shared views (or journaled). */
  async settled(): Promise<void> {
    await this.sending;
    await this.sendBatch();
  }

  /** Writes the journal to PostgreSQL and replays it into the views; concurrent callers share one run. */
  flush(): Promise<void> {
    this.flushing ??= this.flushAll().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Writes one tenant's counts at once (before reports and resets). */
  async flushTenant(tenantId: string): Promise<void> {
    await this.settled();
    await this.serially(async () => {
      await this.write(this.journal.take([tenantId]));
      await this.replayQueued();
    });
  }

  /** The tenant's usage this month: the shared view plus what this instance has not synced. */
  async snapshot(tenantId: string, now: Date = new Date()): Promise<UsageSnapshot> {
    const period = usagePeriodOf(now);
    if (!this.views) {
      try {
        await this.seedLocal(tenantId, period);
      } catch (error) {
        this.failed('postgres', error as Error);
      }
      const local = this.figures.current(tenantId, period.day);
      return { period, requests: local?.requests ?? 0, dayRequests: local?.dayRequests ?? 0, bytes: local?.bytes ?? 0, exact: local?.observed ?? false };
    }
    try {
      if (!this.redis.ready) throw new Error(`connection is ${this.redis.client?.status}`);
      let view = await this.views.read(tenantId, period);
      if (!view) {
        await this.seedShared(tenantId, period);
        view = await this.views.read(tenantId, period);
      }
      if (!view) throw new Error(`usage of tenant ${tenantId} for ${period.month} is not seeded`);
      const extra = this.figures.unsynced(tenantId, period.day);
      return {
        period,
        requests: view.requests + extra.requests,
        dayRequests: view.dayRequests + extra.dayRequests,
        bytes: view.bytes + extra.bytes,
        exact: true,
      };
    } catch (error) {
      this.failed('redis', error as Error);
      const known = this.figures.current(tenantId, period.day);
      return { period, requests: known?.requests ?? 0, dayRequests: known?.dayRequests ?? 0, bytes: known?.bytes ?? 0, exact: false };
    }
  }

  /** Per-day rows from PostgreSQL, after writing this instance's counts of the tenant. */
  async daily(tenantId: string, from: string, to: string): Promise<DailyUsageRow[]> {
    await this.flushTenant(tenantId);
    return this.repository.daily(tenantId, from, to);
  }

  /**
   * The billing export, one page at a time, after writing this instance's counts. Other instances'
   * counts reach PostgreSQL within their flush interval.
   */
  async *exportRows(from: string, to: string, pageSize = 1000): AsyncGenerator<UsageExportRow> {
    await this.settled();
    await this.flush();
    let cursor: UsageExportCursor | undefined;
    for (;;) {
      const page = await this.repository.exportPage(from, to, pageSize, cursor);
      yield* page;
      if (page.length < pageSize) return;
      const last = page[page.length - 1];
      cursor = { tenantId: last.tenantId, day: last.day };
    }
  }

  /** Zeroes the tenant's current month everywhere; returns what PostgreSQL held. */
  async resetMonth(tenantId: string, now: Date = new Date()) {
    const period = usagePeriodOf(now);
    await this.flushTenant(tenantId);
    const before = await this.repository.deleteMonth(tenantId, dateOf(period.monthStart), dateOf(period.monthEnd));
    if (this.views) await this.views.reset(tenantId, period);
    this.journal.dropMonth(tenantId, period.month);
    this.figures.forget(tenantId);
    return before;
  }

  storageUsed(tenantId: string): Promise<number> {
    return this.repository.storageUsed(tenantId);
  }

  private entryOf(tenantId: string, day: string, token: string): SettleEntry {
    const key = `${tenantId}|${day}|${token}`;
    let entry = this.batch.get(key);
    if (!entry) this.batch.set(key, (entry = { tenantId, day, token, refunds: 0, newRequests: 0, bytesIn: 0, bytesOut: 0 }));
    return entry;
  }

  /**
   * One call for the whole batch (one per tenant slot on a cluster). Where a view took the amounts
   * the journal tags them with its token; where none exists, or Redis failed, with '' (a replay
   * adds them after the flush). A refund that could not be sent waits for the next batch: only the
   * view it was counted into can take it back.
   */
  private sendBatch(): Promise<void> {
    if (this.sending || this.batch.size === 0 || !this.views) return this.sending ?? Promise.resolve();
    const views = this.views;
    const entries = [...this.batch.values()];
    this.batch = new Map();
    const sending = this.send(views, entries).finally(() => {
      if (this.sending === sending) this.sending = undefined;
    });
    this.sending = sending;
    return sending;
  }

  private async send(views: UsageViewStore, entries: readonly SettleEntry[]): Promise<void> {
    try {
      if (!this.redis.ready) throw new Error(`connection is ${this.redis.client?.status}`);
      const replies = await views.settle(entries);
      const today = usagePeriodOf(new Date()).day;
      entries.forEach((entry, i) => {
        const reply = replies[i];
        this.journal.add(entry.tenantId, entry.day, reply.token, { requests: entry.newRequests, bytesIn: entry.bytesIn, bytesOut: entry.bytesOut });
        if (reply.token === '') return;
        this.figures.synced(entry.tenantId, entry.day, entry.newRequests, entry.bytesIn + entry.bytesOut);
        if (entry.day === today) this.figures.observe(entry.tenantId, entry.day, reply.token, reply.requests, reply.dayRequests, reply.bytes);
      });
    } catch (error) {
      this.failed('redis', error as Error);
      for (const entry of entries) {
        this.journal.add(entry.tenantId, entry.day, '', { requests: entry.newRequests, bytesIn: entry.bytesIn, bytesOut: entry.bytesOut });
        if (entry.refunds > 0) this.entryOf(entry.tenantId, entry.day, entry.token).refunds += entry.refunds;
      }
    }
  }

  private async flushAll(): Promise<void> {
    await this.serially(async () => {
      await this.write(this.journal.take());
      await this.replayQueued();
    });
    if (Date.now() - this.lastPruneAt > PRUNE_EVERY_MS) {
      this.lastPruneAt = Date.now();
      await this.repository.pruneBatches(new Date(Date.now() - 86_400_000)).catch((error: Error) => this.failed('postgres', error));
    }
  }

  /** One PostgreSQL transaction for the batches; on failure they stay in the journal with their ids. */
  private async write(batches: readonly JournalBatch[]): Promise<void> {
    if (batches.length === 0) return;
    let versions: Map<string, number>;
    try {
      versions = await this.repository.applyBatches(batches.map((batch) => ({ batchId: batch.batchId, tenantId: batch.tenantId, rows: rowsOf(batch) })));
    } catch (error) {
      this.failed('postgres', error as Error);
      return;
    }
    for (const batch of batches) {
      this.journal.finish(batch);
      const version = versions.get(batch.batchId);
      if (this.views && version !== undefined) this.replays.push({ tenantId: batch.tenantId, version, entries: batch.entries });
    }
    if (this.replays.length > MAX_QUEUED_REPLAYS) {
      const dropped = this.replays.splice(0, this.replays.length - MAX_QUEUED_REPLAYS);
      this.logger.warn(`usage: ${dropped.length} replays into month views dropped while Redis is unavailable (PostgreSQL has the counts)`);
    }
  }

  private async replayQueued(): Promise<void> {
    if (!this.views || this.replays.length === 0 || !this.redis.ready) return;
    const items = this.replays;
    this.replays = [];
    try {
      await this.views.replay(items);
    } catch (error) {
      this.failed('redis', error as Error);
      this.replays = [...items, ...this.replays];
      return;
    }
    // Untagged amounts (counted in process) are in the shared view now, or in the PostgreSQL rows
    // the next rebuild of the view reads.
    for (const item of items) {
      for (const entry of item.entries) {
        if (entry.tag === '') this.figures.synced(item.tenantId, entry.day, entry.requests, entry.bytesIn + entry.bytesOut);
      }
    }
  }

  private serially(work: () => Promise<void>): Promise<void> {
    const run = this.writing.then(work);
    this.writing = run.catch(() => undefined);
    return run;
  }

  private once(key: string, work: () => Promise<void>): Promise<void> {
    let running = this.seeding.get(key);
    if (!running) {
      running = work().finally(() => this.seeding.delete(key));
      this.seeding.set(key, running);
    }
    return running;
  }

  private failed(store: 'redis' | 'postgres', error: Error): void {
    this.metrics?.storeError(store);
    const count = this.failureLog.failed();
    if (count !== undefined) this.logger.warn(`usage counters: ${store} failed ${count} time(s): ${error.message}`);
  }
}

function dateOf(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}

function localToken(): string {
  return `local-${randomBytes(4).toString('hex')}`;
}
