import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import type { PlanLimits, QuotaOverrides, RateLimitOverrides } from '../../tenants/effective-limits';
import { TenantEntity, type TenantStatus } from '../../tenants/tenant.entity';

/** Everything the request path needs about a JWT caller's tenant, its plan and allowlist. */
export interface JwtTenantRecord {
  tenantId: string;
  tenantName: string;
  status: TenantStatus;
  rateLimits: RateLimitOverrides;
  quotas: QuotaOverrides;
  allowedSources: string[];
  allowUnsignedUrls: boolean;
  planId: string;
  plan: PlanLimits;
  allowlist: string[];
}

interface JwtTenantRow {
  tenant_id: string;
  tenant_name: string;
  status: TenantStatus;
  rate_limits: RateLimitOverrides;
  quotas: QuotaOverrides;
  allowed_sources: string[];
  allow_unsigned_urls: boolean;
  plan_id: string;
  rate_per_minute: number;
  rate_per_hour: number;
  burst: number | null;
  monthly_requests: string;
  daily_requests: string | null;
  monthly_bandwidth_bytes: string;
  storage_bytes: string;
  allowlist: string[];
}

@Injectable()
export class JwtTenantRepository {
  private lookups = 0;

  constructor(@InjectRepository(TenantEntity) private readonly repo: Repository<TenantEntity>) {}

  /** Lookups made since start (what the tenant cache is there to save). */
  get lookupCount(): number {
    return this.lookups;
  }

  /**
   * The cache-miss lookup, in one round trip: the tenant with its plan and allowlist (a read
   * model of three tables, like the API-key lookup). `tenantId` must be a uuid.
   */
  async findAuthRecord(tenantId: string): Promise<JwtTenantRecord | undefined> {
    this.lookups++;
    const rows: JwtTenantRow[] = await this.repo.query(
      `SELECT t.id AS tenant_id, t.name AS tenant_name, t.status, t.rate_limits, t.quotas, t.allowed_sources,
              t.allow_unsigned_urls, p.id AS plan_id, p.rate_per_minute, p.rate_per_hour, p.burst,
              p.monthly_requests, p.daily_requests, p.monthly_bandwidth_bytes, p.storage_bytes,
              ARRAY(SELECT a.cidr::text FROM ip_allowlist a WHERE a.tenant_id = t.id) AS allowlist
         FROM tenants t
         JOIN plans p ON p.id = t.plan_id
        WHERE t.id = $1`,
      [tenantId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      tenantId: row.tenant_id,
      tenantName: row.tenant_name,
      status: row.status,
      rateLimits: row.rate_limits,
      quotas: row.quotas,
      allowedSources: row.allowed_sources,
      allowUnsignedUrls: row.allow_unsigned_urls,
      planId: row.plan_id,
      plan: {
        perMinute: row.rate_per_minute,
        perHour: row.rate_per_hour,
        burst: row.burst,
        monthlyRequests: Number(row.monthly_requests),
        dailyRequests: row.daily_requests === null ? null : Number(row.daily_requests),
        monthlyBandwidthBytes: Number(row.monthly_bandwidth_bytes),
        storageBytes: Number(row.storage_bytes),
      },
      allowlist: row.allowlist,
    };
  }
}
