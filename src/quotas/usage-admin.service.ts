import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../audit/audit.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { TenantsService } from '../tenants/tenants.service';
import { usagePeriodOf } from '../usage/usage-period';
import { UsageRepository } from '../usage/usage.repository';
import { UsageService } from '../usage/usage.service';
import { QuotaService } from './quota.service';
import type { TenantUsageReportDto, UsageResetResponseDto } from './usage.dto';

const MAX_RANGE_DAYS = 366;

/** Admin usage reports and resets (docs/rate-limits-and-quotas.md, docs/tenants-and-keys.md). */
@Injectable()
export class UsageAdminService {
  constructor(
    private readonly usage: UsageService,
    private readonly repository: UsageRepository,
    private readonly audit: AuditService,
    private readonly tenants: TenantsService,
    private readonly quotas: QuotaService,
  ) {}

  async report(tenantId: string, from?: string, to?: string, now: Date = new Date()): Promise<TenantUsageReportDto> {
    const tenant = await this.tenants.get(tenantId);
    const period = usagePeriodOf(now);
    const first = from ?? period.monthStart.toISOString().slice(0, 10);
    const last = to ?? period.day;
    const span = (Date.parse(last) - Date.parse(first)) / 86_400_000;
    if (!Number.isFinite(span) || span < 0 || span > MAX_RANGE_DAYS) {
      throw new GatewayException('validation_failed', undefined, { details: [`from and to must be valid dates, from ≤ to, at most ${MAX_RANGE_DAYS} days apart`] });
    }
    const days = await this.usage.daily(tenantId, first, last);
    const totals = { requests: 0, bytesIn: 0, bytesOut: 0 };
    for (const day of days) {
      totals.requests += day.requests;
      totals.bytesIn += day.bytesIn;
      totals.bytesOut += day.bytesOut;
    }
    const current = await this.quotas.report({ tenantId, limits: tenant.limits }, now);
    return { ...current, tenantId, from: first, to: last, days, totals };
  }

  async reset(tenantId: string, request: FastifyRequest, now: Date = new Date()): Promise<UsageResetResponseDto> {
    await this.assertTenant(tenantId);
    const period = usagePeriodOf(now);
    const before = await this.usage.resetMonth(tenantId, now);
    const range = { start: period.monthStart.toISOString(), end: period.monthEnd.toISOString() };
    await this.audit.record(request, {
      action: 'usage.reset',
      targetType: 'tenant',
      targetId: tenantId,
      before: { period: range, ...before },
      after: { period: range, requests: 0, bytesIn: 0, bytesOut: 0 },
    });
    return { tenantId, period: range, before };
  }

  private async assertTenant(tenantId: string): Promise<void> {
    if (!(await this.repository.tenantExists(tenantId))) throw new GatewayException('not_found', 'No such tenant.');
  }
}
