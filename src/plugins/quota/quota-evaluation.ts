import type { EffectiveLimits } from '../../gateway/caller';
import type { HeaderMap } from '../rate-limiting/rate-limit-headers';

/** Quota names as they appear in `quota_exceeded` bodies and metrics (docs/rate-limits-and-quotas.md). */
export type QuotaName = 'monthlyRequests' | 'dailyRequests' | 'monthlyBandwidthBytes' | 'storageBytes';

export interface QuotaFigure {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
}

export interface RequestUsage {
  readonly requests: number;
  readonly dayRequests: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface QuotaVerdict {
  /** The first quota used up, in the order monthly requests, daily requests, bandwidth. */
  readonly exceeded?: QuotaName;
  /** `X-Quota-*` for the monthly request quota; remaining counts this request when admitted. */
  readonly headers: HeaderMap;
}

export function quotaFigure(limit: number, used: number): QuotaFigure {
  return { limit, used, remaining: Math.max(0, limit - used) };
}

/**
 * Decides a request against the tenant's request and bandwidth quotas before any work is done.
 * A quota is used up when the usage reaches its limit: the request that would go past it is the
 * first refused. Bandwidth is only known after a response, so the last admitted request may take
 * a tenant past its byte quota; the next one is refused.
 */
export function evaluateRequestQuotas(
  limits: Pick<EffectiveLimits, 'monthlyRequests' | 'dailyRequests' | 'monthlyBandwidthBytes'>,
  usage: RequestUsage,
  resetSeconds: number,
): QuotaVerdict {
  let exceeded: QuotaName | undefined;
  if (usage.requests >= limits.monthlyRequests) exceeded = 'monthlyRequests';
  else if (limits.dailyRequests !== undefined && limits.dailyRequests !== null && usage.dayRequests >= limits.dailyRequests) exceeded = 'dailyRequests';
  else if (usage.bytesIn + usage.bytesOut >= limits.monthlyBandwidthBytes) exceeded = 'monthlyBandwidthBytes';
  const remainingAfter = exceeded ? Math.max(0, limits.monthlyRequests - usage.requests) : Math.max(0, limits.monthlyRequests - usage.requests - 1);
  return {
    exceeded,
    headers: {
      'x-quota-limit': limits.monthlyRequests,
      'x-quota-remaining': remainingAfter,
      'x-quota-reset': resetSeconds,
    },
  };
}

/** Whether `incoming` more bytes fit the storage quota, counting uploads still being written. */
export function storageFits(limit: number, stored: number, reserved: number, incoming: number): boolean {
  return stored + reserved + incoming <= limit;
}
