import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { MonthBase, UsageRow } from './usage-counter.store';

export interface FlushBatch {
  readonly batchId: string;
  readonly tenantId: string;
  readonly rows: readonly UsageRow[];
}

export interface DailyUsageRow extends UsageRow {
  readonly storageBytes: number;
}

/** PostgreSQL side of usage: `usage_counters` (one row per tenant and UTC day) and flush batches. */
@Injectable()
export class UsageRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * Applies flush batches exactly once, in one transaction: a batch id already recorded (an earlier
   * attempt committed, then the gateway died before telling Redis) adds nothing. Rows of tenants
   * deleted meanwhile are dropped rather than failing the whole flush on the foreign key.
   * Returns the ids that were new.
   */
  async applyBatches(batches: readonly FlushBatch[]): Promise<string[]> {
    if (batches.length === 0) return [];
    return this.db.transaction(async (manager) => {
      const inserted: { batch_id: string }[] = await manager.query(
        `INSERT INTO usage_flush_batches (batch_id, tenant_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[])
         ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id`,
        [batches.map((b) => b.batchId), batches.map((b) => b.tenantId)],
      );
      const fresh = new Set(inserted.map((row) => row.batch_id));
      // One statement may not touch a row twice: sum the rows of several batches per (tenant, day).
      const sums = new Map<string, { tenantId: string; day: string; requests: number; bytesIn: number; bytesOut: number }>();
      for (const batch of batches) {
        if (!fresh.has(batch.batchId)) continue;
        for (const row of batch.rows) {
          const key = `${batch.tenantId}|${row.day}`;
          const sum = sums.get(key) ?? { tenantId: batch.tenantId, day: row.day, requests: 0, bytesIn: 0, bytesOut: 0 };
          sum.requests += row.requests;
          sum.bytesIn += row.bytesIn;
          sum.bytesOut += row.bytesOut;
          sums.set(key, sum);
        }
      }
      if (sums.size > 0) {
        const rows = [...sums.values()];
        await manager.query(
          `INSERT INTO usage_counters AS u (tenant_id, period, requests, bytes_in, bytes_out, storage_bytes)
           SELECT v.tenant_id, v.period, v.requests, v.bytes_in, v.bytes_out,
                  (SELECT COALESCE(sum(i.size_bytes), 0) FROM images i WHERE i.tenant_id = v.tenant_id)
           FROM unnest($1::uuid[], $2::date[], $3::bigint[], $4::bigint[], $5::bigint[])
             AS v (tenant_id, period, requests, bytes_in, bytes_out)
           JOIN tenants t ON t.id = v.tenant_id
           ON CONFLICT (tenant_id, period) DO UPDATE SET
             requests = u.requests + excluded.requests,
             bytes_in = u.bytes_in + excluded.bytes_in,
             bytes_out = u.bytes_out + excluded.bytes_out,
             storage_bytes = excluded.storage_bytes,
             updated_at = now()`,
          [
            rows.map((r) => r.tenantId),
            rows.map((r) => r.day),
            rows.map((r) => String(r.requests)),
            rows.map((r) => String(r.bytesIn)),
            rows.map((r) => String(r.bytesOut)),
          ],
        );
      }
      return [...fresh];
    });
  }

  /**
   * A month's figures and whether `batchId` is already applied, in ONE statement so that both
   * come from the same snapshot (a batch commits its id and its rows together).
   */
  async monthBase(tenantId: string, monthStart: string, monthEnd: string, batchId?: string): Promise<{ base: MonthBase; batchApplied: boolean }> {
    const rows: { dd: string | null; requests: string | null; bytes_in: string | null; bytes_out: string | null; applied: boolean }[] = await this.db.query(
      `SELECT to_char(u.period, 'DD') AS dd, u.requests::text, u.bytes_in::text, u.bytes_out::text, b.applied
       FROM (SELECT EXISTS (SELECT 1 FROM usage_flush_batches WHERE batch_id = $4::uuid) AS applied) b
       LEFT JOIN usage_counters u ON u.tenant_id = $1 AND u.period >= $2::date AND u.period < $3::date`,
      [tenantId, monthStart, monthEnd, batchId ?? null],
    );
    let requests = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    const days: Record<string, number> = {};
    for (const row of rows) {
      if (row.dd === null) continue;
      requests += Number(row.requests);
      bytesIn += Number(row.bytes_in);
      bytesOut += Number(row.bytes_out);
      days[row.dd] = Number(row.requests);
    }
    return { base: { requests, bytesIn, bytesOut, days }, batchApplied: rows[0]?.applied ?? false };
  }

  /** Per-day rows of a tenant over [from, to] (inclusive dates), oldest first. */
  async daily(tenantId: string, from: string, to: string): Promise<DailyUsageRow[]> {
    const rows: { day: string; requests: string; bytes_in: string; bytes_out: string; storage_bytes: string }[] = await this.db.query(
      `SELECT to_char(period, 'YYYY-MM-DD') AS day, requests::text, bytes_in::text, bytes_out::text, storage_bytes::text
       FROM usage_counters WHERE tenant_id = $1 AND period BETWEEN $2::date AND $3::date ORDER BY period`,
      [tenantId, from, to],
    );
    return rows.map((r) => ({
      day: r.day,
      requests: Number(r.requests),
      bytesIn: Number(r.bytes_in),
      bytesOut: Number(r.bytes_out),
      storageBytes: Number(r.storage_bytes),
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
}
