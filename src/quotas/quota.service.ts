import { Injectable, Optional } from '@nestjs/common';
import { GatewayException } from '../common/errors/gateway.exception';
import type { AuthContext } from '../common/http/request-context';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { usagePeriodOf } from '../usage/usage-period';
import { UsageService } from '../usage/usage.service';
import { type QuotaFigure, quotaFigure, storageFits } from './quota-evaluation';
import { type UsageRange, daysOf, usageRangeOf } from './usage-range';

/** The part of a caller's identity a quota needs. AuthContext satisfies it. */
export type QuotaTenant = Pick<AuthContext, 'tenantId' | 'limits'>;

/** Bytes promised to an upload in progress; release it once the image row exists (or the upload failed). */
export interface StorageReservation {
  readonly tenantId: string;
  readonly bytes: number;
  release(): void;
}

export interface UsageSeriesPoint {
  date: string;
  requests: number;
  bandwidthBytes: number;
  renders: number;
}

export interface TenantUsageReport {
  period: { start: string; end: string };
  requests: QuotaFigure;
  bandwidthBytes: QuotaFigure;
  storageBytes: QuotaFigure;
  dailyRequests?: QuotaFigure & { resetsAt: string };
  series?: UsageSeriesPoint[];
}

/**
 * Quotas (docs/rate-limits-and-quotas.md). Request and bandwidth quotas are checked, and requests
 * counted, by the admission store in the rate limiter's one call (QuotaInterceptor answers its
 * verdict); this service reports usage and keeps the storage quota, which the uploads check.
 */
@Injectable()
export class QuotaService {
  /** Bytes of uploads in progress, per tenant, on this instance. */
  private readonly reserved = new Map<string, number>();

  constructor(
    private readonly usage: UsageService,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {}

  /** `GET /api/v1/usage`: every quota with its limit, use and what is left. */
  async report(auth: QuotaTenant, now: Date = new Date()): Promise<TenantUsageReport> {
    const [usage, stored] = await Promise.all([this.usage.snapshot(auth.tenantId, now), this.usage.storageUsed(auth.tenantId)]);
    const period = usagePeriodOf(now);
    const report: TenantUsageReport = {
      period: { start: period.monthStart.toISOString(), end: period.monthEnd.toISOString() },
      requests: quotaFigure(auth.limits.monthlyRequests, usage.requests),
      bandwidthBytes: quotaFigure(auth.limits.monthlyBandwidthBytes, usage.bytes),
      storageBytes: quotaFigure(auth.limits.storageBytes, stored),
    };
    if (auth.limits.dailyRequests != null) {
      report.dailyRequests = { ...quotaFigure(auth.limits.dailyRequests, usage.dayRequests), resetsAt: period.dayEnd.toISOString() };
    }
    return report;
  }

  /** `GET /api/v1/usage`: the report, plus the per-day series when asked for (`granularity=day`). */
  async tenantUsage(auth: QuotaTenant, query: { from?: string; to?: string; granularity?: 'day' }): Promise<TenantUsageReport> {
    const range = usageRangeOf(query.from, query.to);
    if (query.granularity !== 'day') return this.report(auth);
    const [report, series] = await Promise.all([this.report(auth), this.series(auth, range)]);
    return { ...report, series };
  }

  /** One point per day of `range` (zeros where nothing was counted), from PostgreSQL after this instance's counts are written. */
  async series(auth: QuotaTenant, range: UsageRange): Promise<UsageSeriesPoint[]> {
    const rows = new Map((await this.usage.daily(auth.tenantId, range.from, range.to)).map((row) => [row.day, row]));
    return daysOf(range).map((date) => {
      const row = rows.get(date);
      return { date, requests: row?.requests ?? 0, bandwidthBytes: row ? row.bytesIn + row.bytesOut : 0, renders: row?.renders ?? 0 };
    });
  }

  /** Refuses with `quota_exceeded` (storageBytes) when `bytes` more would not fit. */
  async checkStorage(tenant: QuotaTenant, bytes: number): Promise<void> {
    const stored = await this.usage.storageUsed(tenant.tenantId);
    this.assertStorageFits(tenant, stored, bytes);
  }

  /**
   * Checks and holds `bytes` for an upload about to be written, so that concurrent uploads on this
   * instance cannot all pass the check. Other instances' uploads in progress are not seen: the
   * storage quota can be overshot by the uploads in flight elsewhere, never by more.
   */
  async reserveStorage(tenant: QuotaTenant, bytes: number): Promise<StorageReservation> {
    const stored = await this.usage.storageUsed(tenant.tenantId);
    this.assertStorageFits(tenant, stored, bytes);
    this.reserved.set(tenant.tenantId, (this.reserved.get(tenant.tenantId) ?? 0) + bytes);
    let released = false;
    return {
      tenantId: tenant.tenantId,
      bytes,
      release: () => {
        if (released) return;
        released = true;
        this.releaseStorage(tenant.tenantId, bytes);
      },
    };
  }

  releaseStorage(tenantId: string, bytes: number): void {
    const left = (this.reserved.get(tenantId) ?? 0) - bytes;
    if (left > 0) this.reserved.set(tenantId, left);
    else this.reserved.delete(tenantId);
  }

  private assertStorageFits(tenant: QuotaTenant, stored: number, bytes: number): void {
    if (storageFits(tenant.limits.storageBytes, stored, this.reserved.get(tenant.tenantId) ?? 0, bytes)) return;
    this.metrics?.quotaExceeded('storageBytes');
    throw new GatewayException('quota_exceeded', 'The storageBytes quota is used up.', { quota: 'storageBytes' });
  }
}
