import type { PlanLimits, QuotaOverrides, RateLimitOverrides } from './effective-limits';
import type { TenantStatus } from './tenant.entity';

/*
 * A tenant as a caller: what the request path needs about it on a cache miss, read in the same
 * statement as whatever identifies the caller (an API key, a JWT's tenant claim). Both lookups
 * select these columns of `tenants t JOIN plans p` and map the row here, so they cannot drift.
 */

/** The tenant's and its plan's columns, for `tenants t JOIN plans p ON p.id = t.plan_id`. */
export const TENANT_CALLER_COLUMNS = `t.id AS tenant_id, t.name AS tenant_name, t.status, t.rate_limits, t.quotas, t.allowed_sources,
              t.allow_unsigned_urls, p.id AS plan_id, p.name AS plan_name, p.rate_per_minute, p.rate_per_hour, p.burst,
              p.monthly_requests, p.daily_requests, p.monthly_bandwidth_bytes, p.storage_bytes,
              ARRAY(SELECT a.cidr::text FROM ip_allowlist a WHERE a.tenant_id = t.id) AS allowlist`;

export interface TenantCallerRow {
  tenant_id: string;
  tenant_name: string;
  status: TenantStatus;
  rate_limits: RateLimitOverrides;
  quotas: QuotaOverrides;
  allowed_sources: string[];
  allow_unsigned_urls: boolean;
  plan_id: string;
  plan_name: string;
  rate_per_minute: number;
  rate_per_hour: number;
  burst: number | null;
  monthly_requests: string;
  daily_requests: string | null;
  monthly_bandwidth_bytes: string;
  storage_bytes: string;
  allowlist: string[];
}

export interface TenantCallerRecord {
  tenantId: string;
  tenantName: string;
  tenantStatus: TenantStatus;
  rateLimits: RateLimitOverrides;
  quotas: QuotaOverrides;
  allowedSources: string[];
  allowUnsignedUrls: boolean;
  planId: string;
  planName: string;
  plan: PlanLimits;
  allowlist: string[];
}

export function tenantCallerOf(row: TenantCallerRow): TenantCallerRecord {
  return {
    tenantId: row.tenant_id,
    tenantName: row.tenant_name,
    tenantStatus: row.status,
    rateLimits: row.rate_limits,
    quotas: row.quotas,
    allowedSources: row.allowed_sources,
    allowUnsignedUrls: row.allow_unsigned_urls,
    planId: row.plan_id,
    planName: row.plan_name,
    plan: {
      perMinute: row.rate_per_minute,
      perHour: row.rate_per_hour,
      burst: row.burst,
      // bigint columns arrive as strings from pg
      monthlyRequests: Number(row.monthly_requests),
      dailyRequests: row.daily_requests === null ? null : Number(row.daily_requests),
      monthlyBandwidthBytes: Number(row.monthly_bandwidth_bytes),
      storageBytes: Number(row.storage_bytes),
    },
    allowlist: row.allowlist,
  };
}
