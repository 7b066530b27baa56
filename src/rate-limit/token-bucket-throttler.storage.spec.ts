import { SchedulerRegistry } from '@nestjs/schedule';
import { GatewayConfig } from '../config/gateway-config';
import type { RedisService } from '../redis/redis.service';
import type { UsageRepository } from '../usage/usage.repository';
import { UsageService } from '../usage/usage.service';
import { AdmissionService } from './admission.service';
import { TokenBucketThrottlerStorage } from './token-bucket-throttler.storage';

/** Single-instance mode: no Redis client, so the in-process store decides (no stand-in for Redis). */
const withoutRedis = { client: undefined, ready: false, prefix: 'igw:', key: (...parts: string[]) => `igw:${parts.join(':')}` } as unknown as RedisService;
// Buckets without a quota never reach PostgreSQL.
const noDatabase = {} as UsageRepository;

describe('TokenBucketThrottlerStorage without Redis', () => {
  it("answers @nestjs/throttler's one-bucket contract", async () => {
    const config = new GatewayConfig();
    const usage = new UsageService(withoutRedis, noDatabase, config, new SchedulerRegistry());
    const storage = new TokenBucketThrottlerStorage(new AdmissionService(config, withoutRedis, usage, noDatabase));
    const first = await storage.increment('k', 60_000, 2, 60_000, 'default');
    expect(first).toEqual({ totalHits: 1, timeToExpire: 30, isBlocked: false, timeToBlockExpire: 0 });
    await storage.increment('k', 60_000, 2, 60_000, 'default');
    const third = await storage.increment('k', 60_000, 2, 60_000, 'default');
    expect(third.isBlocked).toBe(true);
    expect(third.timeToBlockExpire).toBe(30);
    // Another key has its own bucket.
    expect((await storage.increment('other', 60_000, 2, 60_000, 'default')).isBlocked).toBe(false);
  });
});
