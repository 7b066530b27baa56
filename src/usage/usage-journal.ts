import { randomUUID } from 'node:crypto';

/** What requests add to a tenant's usage of a day. */
export interface UsageAmounts {
  readonly requests: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Requests the backend rendered (not served from the gateway's image cache). */
  readonly renders: number;
}

/**
 * Amounts of one UTC day, tagged with the seed token of the shared month view they were added to
 * ('' = none: decided in process, or the view did not exist). The tag decides, after the amounts
 * reached PostgreSQL, whether a month view rebuilt meanwhile still lacks them (usage.scripts.ts).
 */
export interface JournalEntry extends UsageAmounts {
  readonly day: string;
  readonly tag: string;
}

/** A tenant's amounts written to PostgreSQL in one transaction, exactly once under `batchId`. */
export interface JournalBatch {
  readonly batchId: string;
  readonly tenantId: string;
  readonly entries: readonly JournalEntry[];
}

/** A day's amounts of a batch as PostgreSQL stores them (`usage_counters` rows). */
export interface UsageRow extends UsageAmounts {
  readonly day: string;
}

interface MutableEntry {
  day: string;
  tag: string;
  requests: number;
  bytesIn: number;
  bytesOut: number;
  renders: number;
}

/**
 * This instance's counts not yet in PostgreSQL (docs/rate-limits-and-quotas.md). Each instance
 * writes its own: what it served is durable even if Redis loses its data, a graceful shutdown
 * writes everything, a crash loses at most one flush interval. A batch taken for writing keeps its
 * id until the write is known to have committed, so a retry after a failure that did commit adds
 * nothing (migration 003); counts arriving meanwhile wait for the next batch.
 */
export class UsageJournal {
  private readonly pending = new Map<string, Map<string, MutableEntry>>();
  private readonly inflight = new Map<string, JournalBatch>();

  add(tenantId: string, day: string, tag: string, amounts: Partial<UsageAmounts>): void {
    const { requests = 0, bytesIn = 0, bytesOut = 0, renders = 0 } = amounts;
    if (requests === 0 && bytesIn === 0 && bytesOut === 0 && renders === 0) return;
    let entries = this.pending.get(tenantId);
    if (!entries) this.pending.set(tenantId, (entries = new Map()));
    const key = `${day}|${tag}`;
    let entry = entries.get(key);
    if (!entry) entries.set(key, (entry = { day, tag, requests: 0, bytesIn: 0, bytesOut: 0, renders: 0 }));
    entry.requests += requests;
    entry.bytesIn += bytesIn;
    entry.bytesOut += bytesOut;
    entry.renders += renders;
  }

  /** Tenants with counts not yet in PostgreSQL. */
  tenants(): string[] {
    return [...new Set([...this.inflight.keys(), ...this.pending.keys()])];
  }

  get empty(): boolean {
    return this.pending.size === 0 && this.inflight.size === 0;
  }

  /**
   * The batches to write now, one per tenant: a batch whose write failed is retried with its id
   * (and the tenant's newer counts wait), otherwise the pending counts become a new batch.
   */
  take(tenants: readonly string[] = this.tenants()): JournalBatch[] {
    const batches: JournalBatch[] = [];
    for (const tenantId of tenants) {
      let batch = this.inflight.get(tenantId);
      if (!batch) {
        const entries = this.pending.get(tenantId);
        if (!entries) continue;
        this.pending.delete(tenantId);
        batch = { batchId: randomUUID(), tenantId, entries: [...entries.values()] };
        this.inflight.set(tenantId, batch);
      }
      batches.push(batch);
    }
    return batches;
  }

  /** The batch is in PostgreSQL (or its tenant is gone): forget it. */
  finish(batch: JournalBatch): void {
    if (this.inflight.get(batch.tenantId)?.batchId === batch.batchId) this.inflight.delete(batch.tenantId);
  }

  /** Forgets a tenant's pending counts of a month (admin reset); a batch being written is left alone. */
  dropMonth(tenantId: string, month: string): void {
    const entries = this.pending.get(tenantId);
    if (!entries) return;
    for (const [key, entry] of entries) if (entry.day.startsWith(`${month}-`)) entries.delete(key);
    if (entries.size === 0) this.pending.delete(tenantId);
  }
}

/** A batch's amounts per day, the rows PostgreSQL adds them to. */
export function rowsOf(batch: JournalBatch): UsageRow[] {
  const byDay = new Map<string, { day: string; requests: number; bytesIn: number; bytesOut: number; renders: number }>();
  for (const entry of batch.entries) {
    let row = byDay.get(entry.day);
    if (!row) byDay.set(entry.day, (row = { day: entry.day, requests: 0, bytesIn: 0, bytesOut: 0, renders: 0 }));
    row.requests += entry.requests;
    row.bytesIn += entry.bytesIn;
    row.bytesOut += entry.bytesOut;
    row.renders += entry.renders;
  }
  return [...byDay.values()];
}
