import { SetMetadata } from '@nestjs/common';
import type { RouteLimitsConfig } from '../config/gateway-config';

export const RATE_LIMIT_ROUTE = 'igw:rate-limit-route';

/** Routes whose limits exist in config (`rateLimit.routes`). */
export type RateLimitRouteName = keyof RouteLimitsConfig;

/**
 * Names the route's limits (`rateLimit.routes.<name>`: the capacity shared by every caller, an
 * optional per-tenant bucket, the `exact` or `local-sync` policy) that RateLimitGuard adds to the
 * tenant's buckets (docs/rate-limits-and-quotas.md). A route without it has the tenant's buckets only.
 */
export const RateLimitRoute = (name: RateLimitRouteName) => SetMetadata(RATE_LIMIT_ROUTE, name);
