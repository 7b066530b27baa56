import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { RequestLogEntry } from './request-log.entry';

export interface RequestLogQuery {
  tenantId?: string;
  requestId?: string;
  from?: Date;
  to?: Date;
  /** An exact status, or a class as [lo, hi). */
  status?: number | [number, number];
  limit: number;
  offset: number;
}

export interface RequestLogRow extends RequestLogEntry {
  id: string;
}

interface DbRow {
  id: string;
  created_at: Date;
  request_id: string;
  tenant_id: string | null;
  key_id: string | null;
  backend: string | null;
  method: string;
  route: string | null;
  path: string;
  status: number;
  duration_ms: number;
  bytes_in: string;
  bytes_out: string;
  client_ip: string | null;
  cache: string | null;
}

@Injectable()
export class RequestLogRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** One statement per batch: arrays unnested into rows, so a batch of 500 is one round trip. */
  async insertBatch(entries: readonly RequestLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const col = <K extends keyof RequestLogEntry>(key: K) => entries.map((e) => e[key]);
    await this.dataSource.query(
      `INSERT INTO request_logs (created_at, request_id, tenant_id, key_id, backend, method, route, path, status, duration_ms, bytes_in, bytes_out, client_ip, cache)
       SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                            $9::smallint[], $10::int[], $11::bigint[], $12::bigint[], $13::inet[], $14::text[])`,
      [
        col('createdAt'),
        col('requestId'),
        col('tenantId'),
        col('keyId'),
        col('backend'),
        col('method'),
        col('route'),
        col('path'),
        col('status'),
        col('durationMs'),
        col('bytesIn'),
        col('bytesOut'),
        col('clientIp'),
        col('cache'),
      ],
    );
  }

  /**
   * Deletes up to `limit` rows older than `before`; returns how many. SKIP LOCKED lets every
   * gateway instance run the retention job at the same hour without waiting on each other.
   */
  async deleteOlderThan(before: Date, limit: number): Promise<number> {
    const result: unknown = await this.dataSource.query(
      `DELETE FROM request_logs WHERE id IN (
         SELECT id FROM request_logs WHERE created_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [before, limit],
    );
    // TypeORM's postgres driver answers a DELETE with [rows, affectedCount].
    return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
  }

  async find(query: RequestLogQuery): Promise<{ items: RequestLogRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, ...values: unknown[]) => {
      where.push(sql.replace(/\?/g, () => `$${params.push(values.shift())}`));
    };
    if (query.tenantId) add('tenant_id = ?', query.tenantId);
    if (query.requestId) add('request_id = ?', query.requestId);
    if (query.from) add('created_at >= ?', query.from);
    if (query.to) add('created_at < ?', query.to);
    if (Array.isArray(query.status)) add('status >= ? AND status < ?', query.status[0], query.status[1]);
    else if (query.status !== undefined) add('status = ?', query.status);
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const [rows, count] = await Promise.all([
      this.dataSource.query<DbRow[]>(
        `SELECT id, created_at, request_id, tenant_id, key_id, backend, method, route, path, status, duration_ms, bytes_in, bytes_out, host(client_ip) AS client_ip, cache
           FROM request_logs ${filter} ORDER BY created_at DESC, id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, query.limit, query.offset],
      ),
      this.dataSource.query<{ total: string }[]>(`SELECT count(*) AS total FROM request_logs ${filter}`, params),
    ]);
    return { items: rows.map(toRow), total: Number(count[0]?.total ?? 0) };
  }
}

function toRow(row: DbRow): RequestLogRow {
  return {
    id: row.id,
    createdAt: row.created_at,
    requestId: row.request_id,
    tenantId: row.tenant_id,
    keyId: row.key_id,
    backend: row.backend,
    method: row.method,
    route: row.route ?? '',
    path: row.path,
    status: row.status,
    durationMs: row.duration_ms,
    bytesIn: Number(row.bytes_in),
    bytesOut: Number(row.bytes_out),
    clientIp: row.client_ip,
    cache: row.cache as RequestLogRow['cache'],
  };
}
