import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { AdmissionKeys, MONTH_VIEW_GRACE_MS, viewFields } from '../rate-limit/admission-plan';
import type { JournalEntry } from './usage-journal';
import type { UsagePeriod } from './usage-period';
import { USAGE_REPLAY, USAGE_RESET, USAGE_SEED, USAGE_SETTLE } from './usage.scripts';

/** A month as PostgreSQL holds it: totals plus requests per day ('YYYY-MM-DD'). */
export interface MonthBase {
  readonly requests: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly days: Readonly<Record<string, number>>;
}

/** The shared month view's figures. */
export interface ViewFigures {
  readonly token: string;
  readonly requests: number;
  readonly dayRequests: number;
  /** Request + response bytes. */
  readonly bytes: number;
}

/** Request outcomes of one tenant, day and counting token, summed over a batch interval. */
export interface SettleEntry {
  readonly tenantId: string;
  readonly day: string;
  /** The token the refunded requests were counted under. */
  readonly token: string;
  refunds: number;
  /** `local-sync` requests, counted in process at admission. */
  newRequests: number;
  bytesIn: number;
  bytesOut: number;
}

export interface SettleReply {
  /** The view's seed token; '' when there is no view (nothing was written). */
  readonly token: string;
  readonly requests: number;
  readonly dayRequests: number;
  readonly bytes: number;
  readonly refunded: number;
}

/** A flushed batch to replay into the tenant's view (usage.scripts.ts). */
export interface ReplayItem {
  readonly tenantId: string;
  readonly version: number;
  readonly entries: readonly JournalEntry[];
}

export type SeedOutcome = 'seeded' | 'already' | 'stale';

/** The Redis side of the month views (usage.scripts.ts); on a cluster each tenant's calls go to its slot. */
export class UsageViewStore {
  private readonly keys: AdmissionKeys;

  constructor(
    private readonly client: Redis | Cluster,
    keyPrefix: string,
  ) {
    this.keys = new AdmissionKeys(keyPrefix);
  }

  async read(tenantId: string, period: UsagePeriod): Promise<ViewFigures | undefined> {
    const [token, requests, dayRequests, bytes] = await this.client.hmget(this.keys.tenant(tenantId), ...viewFields(period));
    if (token === null) return undefined;
    return { token, requests: Number(requests ?? 0), dayRequests: Number(dayRequests ?? 0), bytes: Number(bytes ?? 0) };
  }

  async seed(tenantId: string, period: UsagePeriod, base: MonthBase, version: number): Promise<SeedOutcome> {
    const ttlSeconds = Math.ceil((period.monthEnd.getTime() + MONTH_VIEW_GRACE_MS - Date.now()) / 1000);
    const m = period.month;
    const fields: (string | number)[] = [`r:${m}`, base.requests, `by:${m}`, base.bytesIn + base.bytesOut];
    for (const [day, requests] of Object.entries(base.days)) fields.push(`r:${day}`, requests);
    const reply = await USAGE_SEED.run(this.client, [this.keys.tenant(tenantId)], [m, version, seedToken(), ttlSeconds, ...fields]);
    return reply === 1 ? 'seeded' : reply === 0 ? 'already' : 'stale';
  }

  async settle(entries: readonly SettleEntry[]): Promise<SettleReply[]> {
    const groups = this.client.isCluster ? entries.map((entry) => [entry]) : [entries];
    const replies = await Promise.all(groups.map((group) => this.settleGroup(group)));
    return replies.flat();
  }

  async replay(items: readonly ReplayItem[]): Promise<void> {
    if (items.length === 0) return;
    const groups = this.client.isCluster ? items.map((item) => [item]) : [items];
    await Promise.all(groups.map((group) => this.replayGroup(group)));
  }

  async reset(tenantId: string, period: UsagePeriod): Promise<void> {
    await USAGE_RESET.run(this.client, [this.keys.tenant(tenantId)], [period.month]);
  }

  private async settleGroup(entries: readonly SettleEntry[]): Promise<SettleReply[]> {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const entry of entries) {
      keys.push(this.keys.tenant(entry.tenantId));
      const m = entry.day.slice(0, 7);
      args.push(`s:${m}`, `r:${m}`, `r:${entry.day}`, `by:${m}`, entry.token, entry.refunds, entry.newRequests, entry.bytesIn + entry.bytesOut);
    }
    const flat = (await USAGE_SETTLE.run(this.client, keys, args)) as (string | number)[];
    const replies: SettleReply[] = [];
    for (let i = 0; i < flat.length; i += 5) {
      replies.push({ token: String(flat[i] ?? ''), requests: Number(flat[i + 1]), dayRequests: Number(flat[i + 2]), bytes: Number(flat[i + 3]), refunded: Number(flat[i + 4]) });
    }
    return replies;
  }

  private async replayGroup(items: readonly ReplayItem[]): Promise<void> {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const item of items) {
      keys.push(this.keys.tenant(item.tenantId));
      // What only PostgreSQL keeps (renders) needs no replay.
      const entries = item.entries.filter((e) => e.requests !== 0 || e.bytesIn !== 0 || e.bytesOut !== 0);
      args.push(item.version, ttlMsFor(entries[0]?.day ?? new Date().toISOString().slice(0, 10)), entries.length);
      for (const e of entries) {
        const m = e.day.slice(0, 7);
        args.push(`s:${m}`, `v:${m}`, `r:${m}`, `r:${e.day}`, `by:${m}`, e.tag, e.requests, e.bytesIn + e.bytesOut);
      }
    }
    await USAGE_REPLAY.run(this.client, keys, args);
  }
}

/** Expiry of a tenant hash a replay creates: the end of the month's grace. */
function ttlMsFor(day: string): number {
  const [year, month] = day.split('-').map(Number);
  return Math.max(1000, Date.UTC(year, month, 1) + MONTH_VIEW_GRACE_MS - Date.now());
}

/** Identifies one seeding of a view; short, since every admission reply carries it. */
function seedToken(): string {
  return randomBytes(6).toString('base64url');
}
