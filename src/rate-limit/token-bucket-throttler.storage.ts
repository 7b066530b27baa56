import { Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { AdmissionService } from './admission.service';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * The `ThrottlerStorage` of @nestjs/throttler, backed by the admission store's token buckets
 * (Redis shared by every instance, in process without Redis, `onStoreFailure` in between), so
 * anything built on the stock ThrottlerGuard gets a shared limit.
 *
 * The gateway's own RateLimitGuard does not go through `increment()`: that contract is one bucket
 * per call, so the stock guard would pay one Redis round trip per scope (tenant minute, tenant
 * hour, route capacity...), none atomic with the others, and could not carry the quota check and
 * the request count. The guard calls `AdmissionService.admit` instead: every bucket, the quota and
 * the count in one atomic call.
 */
@Injectable()
export class TokenBucketThrottlerStorage implements ThrottlerStorage {
  constructor(private readonly admission: AdmissionService) {}

  /** One token bucket of `limit` per `ttl` milliseconds (refilled continuously, `limit` at most). */
  async increment(key: string, ttl: number, limit: number, _blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    const outcome = await this.admission.throttle(throttlerName, key, ttl, limit);
    const result = outcome.result;
    return {
      totalHits: result ? result.limit - result.remaining : 0,
      timeToExpire: result?.resetSeconds ?? 0,
      isBlocked: !outcome.allowed,
      timeToBlockExpire: outcome.retryAfterSeconds ?? 0,
    };
  }
}
