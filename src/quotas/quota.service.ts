import { Injectable, Optional } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayException } from '../common/errors/gateway.exception';
import type { AuthContext, RequestState } from '../common/http/request-context';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { applyResponseHeaders } from '../rate-limit/rate-limit.request-state';
import { secondsUntil, usagePeriodOf } from '../usage/usage-period';
import { type UsageSnapshot, UsageService } from '../usage/usage.service';
import { type QuotaFigure, evaluateRequestQuotas, quotaFigure, storageFits } from './quota-evaluation';

/** The part of a caller's identity a quota needs. AuthContext satisfies it. */
export type QuotaTenant = Pick<AuthContext, 'tenantId' | 'limits'>;

/** Bytes promised to an upload in progress; release it once the image row exists (or the upload failed). */
export interface StorageReservation {
  readonly tenantId: string;
  readonly bytes: number;
  release(): void;
}

export interface TenantUsageReport {
  period: { start: string; end: string };
  requests: QuotaFigure;
  bandwidthBytes: QuotaFigure;
  storageBytes: QuotaFigure;
  dailyRequests?: QuotaFigure & { resetsAt: string };
}

/**
 * Quotas (docs/rate-limits-and-quotas.md): checked before the work, counted after the response.
 *
 * Request and bandwidth quotas read the tenant's month view, which the rate limiter already
 * fetched in its round trip; counting is one more round trip after the response. Between the
 * check and the count other requests of the tenant may be checked too, so a quota can be overshot
 * by the tenant's requests in flight at that moment, never by more.
 */
@Injectable()
export class QuotaService {
  /** Bytes of uploads in progress, per tenant, on this instance. */
  private readonly reserved = new Map<string, number>();

  constructor(
    private readonly usage: UsageService,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {}

  /**
   * Refuses with 429 `quota_exceeded` when a request or bandwidth quota is used up; otherwise sets
   * the `X-Quota-*` headers and arranges for the request to be counted when its response ends.
   * Decides at once (returns undefined, or throws) when the rate limiter already fetched the
   * tenant's counters for this request, the normal case; otherwise returns the pending decision.
   */
  admit(request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined {
    const auth = request.gw.auth;
    if (!auth) return undefined;
    const now = new Date();
    const prefetched = this.usage.prefetchedSnapshot(auth.tenantId, now, request.gw);
    if (prefetched) {
      this.decide(request, reply, auth, prefetched, now);
      return undefined;
    }
    return this.usage.snapshot(auth.tenantId, now, request.gw).then((usage) => this.decide(request, reply, auth, usage, now));
  }

  /**
   * `admit` for the compiled chain: headers go to the context, and the request is counted by an
   * end-of-response hook of the context instead of listeners on the reply.
   */
  admitContext(ctx: RequestState & { header(name: string, value: string): void; onEnd(hook: (ctx: RequestState) => void): void }): Promise<void> | undefined {
    const auth = ctx.auth;
    if (!auth) return undefined;
    const now = new Date();
    const decide = (usage: UsageSnapshot) => {
      const verdict = evaluateRequestQuotas(auth.limits, usage, secondsUntil(usage.period.monthEnd, now));
      for (const [name, value] of Object.entries(verdict.headers)) ctx.header(name, String(value));
      if (verdict.exceeded) {
        this.metrics?.quotaExceeded(verdict.exceeded);
        throw new GatewayException('quota_exceeded', `The ${verdict.exceeded} quota is used up.`, { quota: verdict.exceeded }, verdict.headers);
      }
      ctx.onEnd((done) => this.usage.record(auth.tenantId, { requests: 1, bytesIn: done.bytesIn ?? 0, bytesOut: done.bytesOut ?? 0 }));
    };
    const prefetched = this.usage.prefetchedSnapshot(auth.tenantId, now, ctx);
    if (prefetched) {
      decide(prefetched);
      return undefined;
    }
    return this.usage.snapshot(auth.tenantId, now, ctx).then(decide);
  }

  private decide(request: FastifyRequest, reply: FastifyReply, auth: AuthContext, usage: UsageSnapshot, now: Date): void {
    const verdict = evaluateRequestQuotas(auth.limits, usage, secondsUntil(usage.period.monthEnd, now));
    if (verdict.exceeded) {
      this.metrics?.quotaExceeded(verdict.exceeded);
      applyResponseHeaders(request, reply, verdict.headers);
      throw new GatewayException('quota_exceeded', `The ${verdict.exceeded} quota is used up.`, { quota: verdict.exceeded }, verdict.headers);
    }
    applyResponseHeaders(request, reply, verdict.headers);
    this.countWhenDone(request, reply, auth.tenantId);
  }

  /**
   * Counts the request once its response is over: 'finish' when it was sent in full, 'close'
   * when the client went away first (an aborted transfer still moved bytes). The byte figures are
   * the ones the proxy counted on the streams.
   */
  countWhenDone(request: FastifyRequest, reply: FastifyReply, tenantId: string): void {
    const raw = reply.raw;
    let counted = false;
    const count = () => {
      if (counted) return;
      counted = true;
      raw.off('finish', count);
      raw.off('close', count);
      this.usage.record(tenantId, { requests: 1, bytesIn: request.gw.bytesIn ?? 0, bytesOut: request.gw.bytesOut ?? 0 });
    };
    raw.once('finish', count);
    raw.once('close', count);
  }

  /** `GET /api/v1/usage`: every quota with its limit, use and what is left. */
  async report(auth: QuotaTenant, now: Date = new Date()): Promise<TenantUsageReport> {
    const [usage, stored] = await Promise.all([this.usage.snapshot(auth.tenantId, now), this.usage.storageUsed(auth.tenantId)]);
    const period = usagePeriodOf(now);
    const report: TenantUsageReport = {
      period: { start: period.monthStart.toISOString(), end: period.monthEnd.toISOString() },
      requests: quotaFigure(auth.limits.monthlyRequests, usage.requests),
      bandwidthBytes: quotaFigure(auth.limits.monthlyBandwidthBytes, usage.bytesIn + usage.bytesOut),
      storageBytes: quotaFigure(auth.limits.storageBytes, stored),
    };
    if (auth.limits.dailyRequests != null) {
      report.dailyRequests = { ...quotaFigure(auth.limits.dailyRequests, usage.dayRequests), resetsAt: period.dayEnd.toISOString() };
    }
    return report;
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
