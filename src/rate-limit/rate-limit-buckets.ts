import type { IPv6 } from 'ipaddr.js';
import type { EffectiveLimits } from '../common/http/request-context';
import { parseAddress } from '../common/net/cidr';
import type { RateLimitConfig, WindowLimitConfig } from '../config/gateway-config';
import { type TokenBucket, tokenBucketKey } from './token-bucket';

/** Route buckets that exist in config (`rateLimit.routes`), named by `@RateLimitRoute()`. */
export type RateLimitRouteName = 'proxy' | 'upload';

/** Buckets of one window config: per minute and/or per hour, sharing the configured burst. */
function windowBuckets(scope: TokenBucket['scope'], id: string, limits: WindowLimitConfig): TokenBucket[] {
  const buckets: TokenBucket[] = [];
  if (limits.perMinute) buckets.push({ key: tokenBucketKey(scope, id, 60), scope, rate: limits.perMinute, windowSeconds: 60, burst: limits.burst });
  if (limits.perHour) buckets.push({ key: tokenBucketKey(scope, id, 3600), scope, rate: limits.perHour, windowSeconds: 3600 });
  return buckets;
}

/**
 * Which buckets a request is checked against (docs/rate-limits-and-quotas.md), in header order: ip, tenant minute,
 * tenant hour, route. The burst of a tenant applies to its per-minute bucket; the hourly bucket
 * holds its hour's figure, so a fresh tenant may spend a full hour's allowance only at the
 * per-minute pace.
 */
export class RateLimitBuckets {
  /** Route buckets depend on config only: built once, not per request. */
  private readonly routes: Record<RateLimitRouteName, TokenBucket[]>;

  constructor(private readonly config: RateLimitConfig) {
    this.routes = { proxy: windowBuckets('route', 'proxy', config.routes.proxy), upload: windowBuckets('route', 'upload', config.routes.upload) };
  }

  ip(clientIp: string): TokenBucket[] {
    return windowBuckets('ip', ipBucketId(clientIp), this.config.ip);
  }

  tenant(tenantId: string, limits: Pick<EffectiveLimits, 'perMinute' | 'perHour' | 'burst'>): TokenBucket[] {
    return windowBuckets('tenant', tenantId, limits);
  }

  route(name: RateLimitRouteName | undefined): TokenBucket[] {
    return name === undefined ? [] : this.routes[name];
  }
}

/**
 * The IP bucket's identity: the address for IPv4, its /64 for IPv6. One IPv6 subscriber usually
 * holds a whole /64, so limiting per address would let a client rotate through 2^64 buckets.
 */
export function ipBucketId(clientIp: string): string {
  if (!clientIp.includes(':')) return clientIp;
  const parsed = parseAddress(clientIp);
  if (!parsed || parsed.kind() !== 'ipv6') return parsed?.toString() ?? clientIp;
  const parts = (parsed as IPv6).parts;
  return `${parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}
