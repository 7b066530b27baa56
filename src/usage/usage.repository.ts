import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { UsageRow } from './usage-journal';
import type { MonthBase } from './usage-view.store';

export interface FlushBatch {
  readonly batchId: string;
  readonly tenantId: string;
  readonly rows: readonly UsageRow[];
}

export interface DailyUsageRow extends UsageRow {
  readonly storageBytes: number;
}

/** One line of the billing export. */
export interface UsageExportRow {
  readonly tenantId: string;
  readonly tenantName: string;
  readonly day: string;
  readonly requests: string;
  readonly bandwidthBytes: string;
  readonly renders: string;
  readonly storageBytes: string;
}

/** Where the next page of an export starts (exclusive). */
export interface UsageExportCursor {
  readonly tenantId: string;
  readonly day: string;
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * PostgreSQL side of usage: `usage_counters` (one row per tenant and UTC day), flush batches
 * (migration 003) and the per-tenant flush versions (migration 004).
 */
@Injectable()
export class UsageRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * Applies flush batches exactly once, in one transaction: a batch id already recorded (an earlier
   * attempt committed, then the answer was lost) adds nothing. Each new batch takes its tenant's
   * next flush version; rows of tenants deleted meanwhile are dropped rather than failing the whole
   * flush on the foreign key. Returns the version of every batch whose tenant exists, new or retried.
   */
  async applyBatches(batches: readonly FlushBatch[]): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    if (batches.length === 0) return versions;
    return this.db.transaction(async (manager) => {
      const inserted: { batch_id: string }[] = await manager.query(
        `INSERT INTO usage_flush_batches (batch_id, tenant_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[])
         ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id`,
        [batches.map((b) => b.batchId), batches.map((b) => b.tenantId)],
      );
      const freshIds = new Set(inserted.map((row) => row.batch_id));
      const fresh = batches.filter((b) => freshIds.has(b.batchId));
      const retried = batches.filter((b) => !freshIds.has(b.batchId));
      if (fresh.length > 0) {
        // Row locks taken in one order (tenant id), so concurrent flushes cannot deadlock; held to
        // commit, so a tenant's versions follow the order its flushes commit in.
        const bumped: { tenant_id: string; version: string }[] = await manager.query(
          `INSERT INTO usage_versions AS v (tenant_id, version)
           SELECT t.id, 1 FROM tenants t WHERE t.id = ANY($1::uuid[]) ORDER BY t.id
           ON CONFLICT (tenant_id) DO UPDATE SET version = v.version + 1
           RETURNING tenant_id, version::text`,
          [[...new Set(fresh.map((b) => b.tenantId))]],
        );
        const byTenant = new Map(bumped.map((row) => [row.tenant_id, Number(row.version)]));
        const stamped = fresh.filter((b) => byTenant.has(b.tenantId));
        for (const batch of stamped) versions.set(batch.batchId, byTenant.get(batch.tenantId)!);
        if (stamped.length > 0) {
          await manager.query(
            `UPDATE usage_flush_batches b SET version = x.version
             FROM unnest($1::uuid[], $2::bigint[]) AS x (batch_id, version) WHERE b.batch_id = x.batch_id`,
            [stamped.map((b) => b.batchId), stamped.map((b) => String(versions.get(b.batchId)))],
          );
          await this.addRows(manager, stamped);
        }
      }
      if (retried.length > 0) {
        const known: { batch_id: string; version: string }[] = await manager.query(
          `SELECT batch_id, version::text FROM usage_flush_batches WHERE batch_id = ANY($1::uuid[]) AND version IS NOT NULL`,
          [retried.map((b) => b.batchId)],
        );
        for (const row of known) versions.set(row.batch_id, Number(row.version));
      }
      return versions;
    });
  }

  private async addRows(manager: { query: DataSource['query'] }, batches: readonly FlushBatch[]): Promise<void> {
    // One statement may not touch a row twice: one row per (tenant, day) already, since a flush
    // holds one batch per tenant and a batch one row per day.
    const rows = batches.flatMap((batch) => batch.rows.map((row) => ({ tenantId: batch.tenantId, ...row })));
    if (rows.length === 0) return;
    await manager.query(
      `INSERT INTO usage_counters AS u (tenant_id, period, requests, bytes_in, bytes_out, renders, storage_bytes)
       SELECT v.tenant_id, v.period, v.requests, v.bytes_in, v.bytes_out, v.renders,
              (SELECT COALESCE(sum(i.size_bytes), 0) FROM images i WHERE i.tenant_id = v.tenant_id)
       FROM unnest($1::uuid[], $2::date[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
         AS v (tenant_id, period, requests, bytes_in, bytes_out, renders)
       JOIN tenants t ON t.id = v.tenant_id
       ON CONFLICT (tenant_id, period) DO UPDATE SET
         requests = u.requests + excluded.requests,
         bytes_in = u.bytes_in + excluded.bytes_in,
         bytes_out = u.bytes_out + excluded.bytes_out,
         renders = u.renders + excluded.renders,
         storage_bytes = excluded.storage_bytes,
         updated_at = now()`,
      [
        rows.map((r) => r.tenantId),
        rows.map((r) => r.day),
        rows.map((r) => String(r.requests)),
        rows.map((r) => String(r.bytesIn)),
        rows.map((r) => String(r.bytesOut)),
        rows.map((r) => String(r.renders)),
      ],
    );
  }

  /**
   * A month's figures and the tenant's flush version, in ONE statement so both come from the same
   * snapshot: the figures hold exactly the flushes up to that version.
   */
  async monthBase(tenantId: string, monthStart: string, monthEnd: string): Promise<{ base: MonthBase; version: number }> {
    const rows: { day: string | null; requests: string | null; bytes_in: string | null; bytes_out: string | null; version: string }[] = await this.db.query(
      `SELECT to_char(u.period, 'YYYY-MM-DD') AS day, u.requests::text, u.bytes_in::text, u.bytes_out::text, v.version::text
       FROM (SELECT COALESCE((SELECT version FROM usage_versions WHERE tenant_id = $1), 0) AS version) v
       LEFT JOIN usage_counters u ON u.tenant_id = $1 AND u.period >= $2::date AND u.period < $3::date`,
      [tenantId, monthStart, monthEnd],
    );
    let requests = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    const days: Record<string, number> = {};
    for (const row of rows) {
      if (row.day === null) continue;
      requests += Number(row.requests);
      bytesIn += Number(row.bytes_in);
      bytesOut += Number(row.bytes_out);
      days[row.day] = Number(row.requests);
    }
    return { base: { requests, bytesIn, bytesOut, days }, version: Number(rows[0]?.version ?? 0) };
  }

  /** Per-day rows of a tenant over [from, to] (inclusive dates), oldest first; days without usage are absent. */
  async daily(tenantId: string, from: string, to: string): Promise<DailyUsageRow[]> {
    const rows: { day: string; requests: string; bytes_in: string; bytes_out: string; renders: string; storage_bytes: string }[] = await this.db.query(
      `SELECT to_char(period, 'YYYY-MM-DD') AS day, requests::text, bytes_in::text, bytes_out::text, renders::text, storage_bytes::text
       FROM usage_counters WHERE tenant_id = $1 AND period BETWEEN $2::date AND $3::date ORDER BY period`,
      [tenantId, from, to],
    );
    return rows.map((r) => ({
      day: r.day,
      requests: Number(r.requests),
      bytesIn: Number(r.bytes_in),
      bytesOut: Number(r.bytes_out),
      renders: Number(r.renders),
      storageBytes: Number(r.storage_bytes),
    }));
  }

  /**
   * One page of the billing export over [from, to]: rows of every tenant, ordered by tenant and day
   * (the primary key's order, so each page is an index range scan), after `cursor`.
   */
  async exportPage(from: string, to: string, limit: number, cursor?: UsageExportCursor): Promise<UsageExportRow[]> {
    const rows: { tenant_id: string; name: string; day: string; requests: string; bandwidth: string; renders: string; storage_bytes: string }[] =
      await this.db.query(
        `SELECT u.tenant_id, t.name, to_char(u.period, 'YYYY-MM-DD') AS day, u.requests::text,
                (u.bytes_in + u.bytes_out)::text AS bandwidth, u.renders::text, u.storage_bytes::text
         FROM usage_counters u JOIN tenants t ON t.id = u.tenant_id
         WHERE (u.tenant_id, u.period) > ($3::uuid, $4::date) AND u.period BETWEEN $1::date AND $2::date
         ORDER BY u.tenant_id, u.period LIMIT $5`,
        [from, to, cursor?.tenantId ?? NIL_UUID, cursor?.day ?? '0001-01-01', limit],
      );
    return rows.map((r) => ({
      tenantId: r.tenant_id,
      tenantName: r.name,
      day: r.day,
      requests: r.requests,
      bandwidthBytes: r.bandwidth,
      renders: r.renders,
      storageBytes: r.storage_bytes,
    }));
  }

  /** Deletes a month's rows of a tenant; returns what they held (the audit's "before"). */
  async deleteMonth(tenantId: string, monthStart: string, monthEnd: string): Promise<{ requests: number; bytesIn: number; bytesOut: number }> {
    const rows: { requests: string | null; bytes_in: string | null; bytes_out: string | null }[] = await this.db.query(
      `WITH gone AS (DELETE FROM usage_counters WHERE tenant_id = $1 AND period >= $2::date AND period < $3::date RETURNING *)
       SELECT sum(requests)::text AS requests, sum(bytes_in)::text AS bytes_in, sum(bytes_out)::text AS bytes_out FROM gone`,
      [tenantId, monthStart, monthEnd],
    );
    const row = rows[0];
    return { requests: Number(row?.requests ?? 0), bytesIn: Number(row?.bytes_in ?? 0), bytesOut: Number(row?.bytes_out ?? 0) };
  }

  /** Stored bytes of a tenant: the truth is the sum over its images, not a counter. */
  async storageUsed(tenantId: string): Promise<number> {
    const rows: { used: string }[] = await this.db.query(`SELECT COALESCE(sum(size_bytes), 0)::text AS used FROM images WHERE tenant_id = $1`, [tenantId]);
    return Number(rows[0]?.used ?? 0);
  }

  async tenantExists(tenantId: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query(`SELECT 1 FROM tenants WHERE id = $1`, [tenantId]);
    return rows.length > 0;
  }

  /** Batch ids are only needed while a batch may still be retried (seconds); keep a day. */
  async pruneBatches(olderThan: Date): Promise<void> {
    await this.db.query(`DELETE FROM usage_flush_batches WHERE applied_at < $1`, [olderThan]);
  }

  /** The largest per-minute figure of the stored plans, for the start-up check of route capacities. */
  async largestPlanPerMinute(): Promise<{ name: string; perMinute: number } | undefined> {
    const rows: { name: string; rate_per_minute: number }[] = await this.db.query(`SELECT name, rate_per_minute FROM plans ORDER BY rate_per_minute DESC LIMIT 1`);
    return rows[0] ? { name: rows[0].name, perMinute: Number(rows[0].rate_per_minute) } : undefined;
  }
}
