import { randomUUID } from 'node:crypto';
import { type UsagePeriod, dayOfMonth } from './usage-period';

/** What one request adds (or a batch of requests, summed). */
export interface UsageDelta {
  readonly requests: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Deltas of one UTC day, the unit PostgreSQL stores (`usage_counters.period`). */
export interface UsageRow extends UsageDelta {
  readonly day: string;
}

/** A month's figures as PostgreSQL holds them: totals plus requests per day of month ('DD'). */
export interface MonthBase extends UsageDelta {
  readonly days: Readonly<Record<string, number>>;
}

/** The shared month view a quota is checked against. */
export interface MonthView extends UsageDelta {
  /** Requests of the period's day. */
  readonly dayRequests: number;
  /** Identifies this seeding of the view: a rebuilt view has another token. */
  readonly token: string;
}

export interface SeedState {
  readonly gen: number;
  readonly inflightBatch?: string;
}

export interface TakenBatch {
  readonly batchId: string;
  readonly rows: readonly UsageRow[];
}

export type SeedOutcome = 'seeded' | 'already' | 'stale';

/**
 * Where a tenant's live counters are kept: Redis (shared by every instance) or in process
 * (single-instance mode, and the outage buffer of the Redis mode). Both implement the same
 * protocol, described in usage.scripts.ts: month view + pending deltas + one inflight batch.
 */
export interface UsageCounterStore {
  /** The month view, or undefined when it is not seeded yet. */
  readMonth(tenantId: string, period: UsagePeriod): Promise<MonthView | undefined>;
  seedState(tenantId: string): Promise<SeedState>;
  /** Seeds from `base` + pending + (when `includeInflight`) the inflight batch named in `state`. */
  seed(tenantId: string, period: UsagePeriod, base: MonthBase, state: SeedState): Promise<SeedOutcome>;
  add(tenantId: string, day: string, delta: UsageDelta): Promise<void>;
  /** The inflight batch (taking pending first if none is inflight), or undefined when idle. */
  take(tenantId: string): Promise<TakenBatch | undefined>;
  /** Forgets a committed batch. */
  finish(tenantId: string, batchId: string): Promise<void>;
  /** Forgets the month's view and its unflushed deltas (admin reset). */
  reset(tenantId: string, period: UsagePeriod): Promise<void>;
}

const KINDS = { r: 'requests', bi: 'bytesIn', bo: 'bytesOut' } as const;

/** Pending/inflight hash fields `YYYY-MM-DD:r|bi|bo` → rows; other fields ('#batch') are skipped. */
export function rowsFromFields(fields: Readonly<Record<string, string | number>>): UsageRow[] {
  const byDay = new Map<string, { requests: number; bytesIn: number; bytesOut: number }>();
  for (const [field, raw] of Object.entries(fields)) {
    const match = /^(\d{4}-\d{2}-\d{2}):(r|bi|bo)$/.exec(field);
    if (!match) continue;
    let row = byDay.get(match[1]);
    if (!row) byDay.set(match[1], (row = { requests: 0, bytesIn: 0, bytesOut: 0 }));
    row[KINDS[match[2] as keyof typeof KINDS]] += Number(raw);
  }
  return [...byDay].map(([day, delta]) => ({ day, ...delta })).filter((row) => row.requests + row.bytesIn + row.bytesOut > 0);
}

/** The month base as hash fields: r, bi, bo and r:DD. */
export function baseFields(base: MonthBase): (string | number)[] {
  const out: (string | number)[] = ['r', base.requests, 'bi', base.bytesIn, 'bo', base.bytesOut];
  for (const [dd, requests] of Object.entries(base.days)) out.push(`r:${dd}`, requests);
  return out;
}

interface LocalMonth {
  token: string;
  requests: number;
  bytesIn: number;
  bytesOut: number;
  days: Map<string, number>;
}

/**
 * The in-process twin of the Redis protocol (same operations, same invariant), so single-instance
 * mode keeps the guarantees of the shared mode: durable by the same flush, rebuilt from
 * PostgreSQL on first use, never double-counted.
 */
export class LocalUsageCounterStore implements UsageCounterStore {
  private readonly months = new Map<string, LocalMonth>();
  private readonly pending = new Map<string, Map<string, UsageDelta>>();
  private readonly inflight = new Map<string, { batchId: string; rows: Map<string, UsageDelta> }>();
  private readonly gens = new Map<string, number>();

  /** Tenants with deltas not yet in PostgreSQL. */
  dirtyTenants(): string[] {
    return [...new Set([...this.pending.keys(), ...this.inflight.keys()])];
  }

  async readMonth(tenantId: string, period: UsagePeriod): Promise<MonthView | undefined> {
    const month = this.months.get(monthKey(tenantId, period.month));
    if (!month) return undefined;
    const { token, requests, bytesIn, bytesOut } = month;
    return { token, requests, bytesIn, bytesOut, dayRequests: month.days.get(dayOfMonth(period.day)) ?? 0 };
  }

  async seedState(tenantId: string): Promise<SeedState> {
    return { gen: this.gens.get(tenantId) ?? 0, inflightBatch: this.inflight.get(tenantId)?.batchId };
  }

  async seed(tenantId: string, period: UsagePeriod, base: MonthBase, state: SeedState): Promise<SeedOutcome> {
    if ((this.gens.get(tenantId) ?? 0) !== state.gen) return 'stale';
    const key = monthKey(tenantId, period.month);
    if (this.months.has(key)) return 'already';
    const month: LocalMonth = { token: randomUUID(), requests: base.requests, bytesIn: base.bytesIn, bytesOut: base.bytesOut, days: new Map(Object.entries(base.days)) };
    const addRows = (rows: Map<string, UsageDelta> | undefined) => {
      for (const [day, delta] of rows ?? []) if (day.startsWith(`${period.month}-`)) addTo(month, day, delta);
    };
    addRows(this.pending.get(tenantId));
    const inflight = this.inflight.get(tenantId);
    if (state.inflightBatch !== undefined && inflight?.batchId === state.inflightBatch) addRows(inflight.rows);
    this.months.set(key, month);
    return 'seeded';
  }

  async add(tenantId: string, day: string, delta: UsageDelta): Promise<void> {
    const month = this.months.get(monthKey(tenantId, day.slice(0, 7)));
    if (month) addTo(month, day, delta);
    let rows = this.pending.get(tenantId);
    if (!rows) this.pending.set(tenantId, (rows = new Map()));
    rows.set(day, sum(rows.get(day), delta));
  }

  async take(tenantId: string): Promise<TakenBatch | undefined> {
    let batch = this.inflight.get(tenantId);
    if (!batch) {
      const rows = this.pending.get(tenantId);
      if (!rows) return undefined;
      this.pending.delete(tenantId);
      batch = { batchId: randomUUID(), rows };
      this.inflight.set(tenantId, batch);
      this.bump(tenantId);
    }
    return { batchId: batch.batchId, rows: [...batch.rows].map(([day, delta]) => ({ day, ...delta })) };
  }

  /** The inflight batch only (a write to PostgreSQL that may or may not have committed). */
  inflightOf(tenantId: string): TakenBatch | undefined {
    const batch = this.inflight.get(tenantId);
    return batch && { batchId: batch.batchId, rows: [...batch.rows].map(([day, delta]) => ({ day, ...delta })) };
  }

  async finish(tenantId: string, batchId: string): Promise<void> {
    if (this.inflight.get(tenantId)?.batchId !== batchId) return;
    this.inflight.delete(tenantId);
    this.bump(tenantId);
  }

  async reset(tenantId: string, period: UsagePeriod): Promise<void> {
    this.months.delete(monthKey(tenantId, period.month));
    for (const rows of [this.pending.get(tenantId), this.inflight.get(tenantId)?.rows]) {
      for (const day of [...(rows?.keys() ?? [])]) if (day.startsWith(`${period.month}-`)) rows!.delete(day);
    }
    if (this.pending.get(tenantId)?.size === 0) this.pending.delete(tenantId);
    this.bump(tenantId);
  }

  private bump(tenantId: string): void {
    this.gens.set(tenantId, (this.gens.get(tenantId) ?? 0) + 1);
  }
}

function monthKey(tenantId: string, month: string): string {
  return `${tenantId}|${month}`;
}

function addTo(month: LocalMonth, day: string, delta: UsageDelta): void {
  month.requests += delta.requests;
  month.bytesIn += delta.bytesIn;
  month.bytesOut += delta.bytesOut;
  const dd = dayOfMonth(day);
  month.days.set(dd, (month.days.get(dd) ?? 0) + delta.requests);
}

function sum(a: UsageDelta | undefined, b: UsageDelta): UsageDelta {
  return { requests: (a?.requests ?? 0) + b.requests, bytesIn: (a?.bytesIn ?? 0) + b.bytesIn, bytesOut: (a?.bytesOut ?? 0) + b.bytesOut };
}
