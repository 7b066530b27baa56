import { SetMetadata } from '@nestjs/common';
import type { RateLimitRouteName } from './rate-limit-buckets';

export const RATE_LIMIT_ROUTE = 'igw:rate-limit-route';

/**
 * Names the route bucket (docs/rate-limits-and-quotas.md: one bucket per route across all tenants, sized by
 * `rateLimit.routes.<name>`) that `RateLimitGuard` adds to the request's buckets.
 */
export const RateLimitRoute = (name: RateLimitRouteName) => SetMetadata(RATE_LIMIT_ROUTE, name);
