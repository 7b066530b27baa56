import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { PiggybackRead } from '../rate-limit/token-bucket-throttler.storage';
import { type UsagePeriod, dayOfMonth, secondsUntil } from './usage-period';
import {
  type MonthBase,
  type MonthView,
  type SeedOutcome,
  type SeedState,
  type TakenBatch,
  type UsageCounterStore,
  type UsageDelta,
  type UsageRow,
  baseFields,
  rowsFromFields,
} from './usage-counter.store';
import { USAGE_FINISH, USAGE_INCREMENT, USAGE_INCREMENT_MANY, USAGE_REPLAY, USAGE_RESET, USAGE_SEED, USAGE_TAKE } from './usage.scripts';

/** A month view outlives its month by this much, for increments of requests that straddle midnight. */
const MONTH_VIEW_GRACE_SECONDS = 3 * 86_400;

/** Key names of the usage protocol (see usage.scripts.ts); `prefix` is the deployment's Redis prefix. */
export class UsageKeys {
  constructor(private readonly prefix: string) {}

  month(tenantId: string, month: string): string {
    return `${this.prefix}u:{t:${tenantId}}:m:${month}`;
  }
  pending(tenantId: string): string {
    return `${this.prefix}u:{t:${tenantId}}:p`;
  }
  inflight(tenantId: string): string {
    return `${this.prefix}u:{t:${tenantId}}:f`;
  }
  gen(tenantId: string): string {
    return `${this.prefix}u:{t:${tenantId}}:g`;
  }
  /** SCAN pattern of every pending and inflight hash (orphans of an instance that died). */
  unflushedPattern(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}u:{t:*}:[pf]`;
  }
  tenantOf(key: string): string | undefined {
    return /\{t:([^}]+)\}/.exec(key.slice(this.prefix.length))?.[1];
  }
}

/** The fields of the month view a quota check reads: seed token, requests, bytes, today's requests. */
export function monthViewFields(period: UsagePeriod): string[] {
  return ['s', 'r', 'bi', 'bo', `r:${dayOfMonth(period.day)}`];
}

/** HMGET reply of `monthViewFields` → the view, or undefined when the month is not seeded. */
export function parseMonthView(reply: readonly (string | null)[]): MonthView | undefined {
  const [token, requests, bytesIn, bytesOut, dayRequests] = reply;
  if (token === null || token === undefined) return undefined;
  return { token, requests: Number(requests ?? 0), bytesIn: Number(bytesIn ?? 0), bytesOut: Number(bytesOut ?? 0), dayRequests: Number(dayRequests ?? 0) };
}

export class RedisUsageCounterStore implements UsageCounterStore {
  constructor(
    private readonly client: Redis | Cluster,
    readonly keys: UsageKeys,
  ) {}

  /** The month view's HMGET, for the rate limiter to send in its own round trip. */
  monthRead(tenantId: string, period: UsagePeriod): PiggybackRead {
    return { key: this.keys.month(tenantId, period.month), fields: monthViewFields(period) };
  }

  async readMonth(tenantId: string, period: UsagePeriod): Promise<MonthView | undefined> {
    const read = this.monthRead(tenantId, period);
    return parseMonthView(await this.client.hmget(read.key, ...read.fields));
  }

  async seedState(tenantId: string): Promise<SeedState> {
    const replies = (await this.client.pipeline().get(this.keys.gen(tenantId)).hget(this.keys.inflight(tenantId), '#batch').exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0];
    const [gen, batch] = replies.map(([, value]) => value as string | null);
    return { gen: Number(gen ?? 0), inflightBatch: batch ?? undefined };
  }

  async seed(tenantId: string, period: UsagePeriod, base: MonthBase, state: SeedState): Promise<SeedOutcome> {
    const ttl = secondsUntil(period.monthEnd, new Date()) + MONTH_VIEW_GRACE_SECONDS;
    const reply = await USAGE_SEED.run(
      this.client,
      [this.keys.month(tenantId, period.month), this.keys.pending(tenantId), this.keys.inflight(tenantId), this.keys.gen(tenantId)],
      [state.gen, state.inflightBatch ?? '', period.month, randomUUID(), ttl, ...baseFields(base)],
    );
    return reply === 1 ? 'seeded' : reply === 0 ? 'already' : 'stale';
  }

  async add(tenantId: string, day: string, delta: UsageDelta): Promise<void> {
    await USAGE_INCREMENT.run(
      this.client,
      [this.keys.month(tenantId, day.slice(0, 7)), this.keys.pending(tenantId)],
      [day, dayOfMonth(day), delta.requests, delta.bytesIn, delta.bytesOut],
    );
  }

  /** Adds several days' deltas in one atomic script (month views where seeded, and pending). */
  async addMany(tenantId: string, rows: readonly UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    const keys = [this.keys.pending(tenantId), ...rows.map((row) => this.keys.month(tenantId, row.day.slice(0, 7)))];
    const args = rows.flatMap((row) => [row.day, dayOfMonth(row.day), row.requests, row.bytesIn, row.bytesOut]);
    await USAGE_INCREMENT_MANY.run(this.client, keys, args);
  }

  /** Adds amounts to a month view only if it is still the seeding identified by `token`. */
  async replay(tenantId: string, month: string, token: string, fields: readonly (string | number)[]): Promise<void> {
    await USAGE_REPLAY.run(this.client, [this.keys.month(tenantId, month)], [token, ...fields]);
  }

  async take(tenantId: string): Promise<TakenBatch | undefined> {
    const flat = (await USAGE_TAKE.run(
      this.client,
      [this.keys.pending(tenantId), this.keys.inflight(tenantId), this.keys.gen(tenantId)],
      [randomUUID()],
    )) as string[];
    if (flat.length === 0) return undefined;
    const fields: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
    return { batchId: fields['#batch'], rows: rowsFromFields(fields) };
  }

  async finish(tenantId: string, batchId: string): Promise<void> {
    await USAGE_FINISH.run(this.client, [this.keys.inflight(tenantId), this.keys.gen(tenantId)], [batchId]);
  }

  async reset(tenantId: string, period: UsagePeriod): Promise<void> {
    await USAGE_RESET.run(
      this.client,
      [this.keys.month(tenantId, period.month), this.keys.pending(tenantId), this.keys.inflight(tenantId), this.keys.gen(tenantId)],
      [period.month],
    );
  }

  /**
   * Tenants with a pending or inflight hash, whoever wrote it (finds the orphans of dead
   * instances). SCAN walks one server's keyspace, so on a cluster every master is scanned.
   */
  async unflushedTenants(): Promise<string[]> {
    const tenants = new Set<string>();
    const servers = this.client.isCluster ? (this.client as Cluster).nodes('master') : [this.client as Redis];
    await Promise.all(servers.map((server) => this.scanUnflushed(server, tenants)));
    return [...tenants];
  }

  private async scanUnflushed(server: Redis, tenants: Set<string>): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', this.keys.unflushedPattern(), 'COUNT', 1000);
      for (const key of keys) {
        const tenant = this.keys.tenantOf(key);
        if (tenant) tenants.add(tenant);
      }
      cursor = next;
    } while (cursor !== '0');
  }
}
