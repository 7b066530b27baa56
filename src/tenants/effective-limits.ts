import type { EffectiveLimits } from '../gateway/caller';

/** A plan's limits and quotas, as the request path needs them. */
export interface PlanLimits {
  perMinute: number;
  perHour: number;
  burst?: number | null;
  monthlyRequests: number;
  dailyRequests?: number | null;
  monthlyBandwidthBytes: number;
  storageBytes: number;
}

/** `tenants.rate_limits`: an absent field means "the plan's value". */
export interface RateLimitOverrides {
  perMinute?: number;
  perHour?: number;
}

/** `tenants.quotas`: an absent field means "the plan's value". */
export interface QuotaOverrides {
  monthlyRequests?: number;
  dailyRequests?: number;
  monthlyBandwidthBytes?: number;
  storageBytes?: number;
}

export const RATE_LIMIT_OVERRIDE_FIELDS = ['perMinute', 'perHour'] as const;
export const QUOTA_OVERRIDE_FIELDS = ['monthlyRequests', 'dailyRequests', 'monthlyBandwidthBytes', 'storageBytes'] as const;

/**
 * The limits a tenant runs under: its plan, with each per-tenant override replacing the
 * plan's figure. The burst stays the plan's (undefined = the per-window figure).
 */
export function mergeLimits(plan: PlanLimits, rateLimits: RateLimitOverrides = {}, quotas: QuotaOverrides = {}): EffectiveLimits {
  const limits: EffectiveLimits = {
    perMinute: rateLimits.perMinute ?? plan.perMinute,
    perHour: rateLimits.perHour ?? plan.perHour,
    monthlyRequests: quotas.monthlyRequests ?? plan.monthlyRequests,
    monthlyBandwidthBytes: quotas.monthlyBandwidthBytes ?? plan.monthlyBandwidthBytes,
    storageBytes: quotas.storageBytes ?? plan.storageBytes,
  };
  const burst = plan.burst ?? undefined;
  if (burst !== undefined) limits.burst = burst;
  const daily = quotas.dailyRequests ?? plan.dailyRequests ?? undefined;
  if (daily !== undefined) limits.dailyRequests = daily;
  return limits;
}

/**
 * Applies a PATCH to stored overrides: a number sets a field, `null` clears it, an absent
 * field is kept; `null` for the whole object clears every override of that kind.
 */
export function applyOverridePatch<T extends object>(
  current: T,
  patch: { [K in keyof T]?: T[K] | null } | null | undefined,
  fields: readonly (keyof T)[],
): T {
  if (patch === undefined) return current;
  if (patch === null) return {} as T;
  const next: Partial<T> = { ...current };
  for (const field of fields) {
    if (!(field in patch)) continue;
    const value = patch[field];
    if (value === null || value === undefined) delete next[field];
    else next[field] = value as T[keyof T];
  }
  return next as T;
}
