import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../audit/audit.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { TenantsService } from '../tenants/tenants.service';
import { usagePeriodOf } from '../usage/usage-period';
import { csvField } from './csv';
import { type UsageRange, usageRangeOf } from './usage-range';
import { UsageRepository } from '../usage/usage.repository';
import { UsageService } from '../usage/usage.service';
import { QuotaService } from './quota.service';
import type { TenantUsageReportDto, UsageResetResponseDto } from './usage.dto';

export const USAGE_CSV_COLUMNS = ['tenant_id', 'tenant_name', 'date', 'requests', 'bandwidth_bytes', 'renders', 'storage_bytes'] as const;

/** Admin usage reports, resets and the billing export (docs/rate-limits-and-quotas.md, docs/tenants-and-keys.md). */
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
    const { from: first, to: last } = usageRangeOf(from, to, now);
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

  /**
   * The billing export over a validated range: a header line, then one line per tenant and day with
   * usage, read from PostgreSQL a page at a time so an export of every tenant over a year never
   * sits in memory whole.
   */
  exportCsv(from?: string, to?: string): { range: UsageRange; lines: AsyncIterable<string> } {
    const range = usageRangeOf(from, to);
    const usage = this.usage;
    async function* lines(): AsyncGenerator<string> {
      yield `${USAGE_CSV_COLUMNS.join(',')}\r\n`;
      for await (const row of usage.exportRows(range.from, range.to)) {
        yield `${[row.tenantId, csvField(row.tenantName), row.day, row.requests, row.bandwidthBytes, row.renders, row.storageBytes].join(',')}\r\n`;
      }
    }
    return { range, lines: lines() };
  }

  private async assertTenant(tenantId: string): Promise<void> {
    if (!(await this.repository.tenantExists(tenantId))) throw new GatewayException('not_found', 'No such tenant.');
  }
}
