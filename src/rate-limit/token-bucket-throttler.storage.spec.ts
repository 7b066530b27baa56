import { GatewayConfig } from '../config/gateway-config';
import type { RedisService } from '../redis/redis.service';
import { TokenBucketThrottlerStorage } from './token-bucket-throttler.storage';
import { tokenBucketKey } from './token-bucket';

/** Single-instance mode: no Redis client, so the in-process store decides (no stand-in for Redis). */
const withoutRedis = { client: undefined, ready: false, key: (...parts: string[]) => `igw:${parts.join(':')}` } as unknown as RedisService;

describe('TokenBucketThrottlerStorage without Redis', () => {
  it("answers @nestjs/throttler's one-bucket contract", async () => {
    const storage = new TokenBucketThrottlerStorage(withoutRedis, new GatewayConfig());
    const first = await storage.increment('k', 60_000, 2, 60_000, 'default');
    expect(first).toEqual({ totalHits: 1, timeToExpire: 30, isBlocked: false, timeToBlockExpire: 0 });
    await storage.increment('k', 60_000, 2, 60_000, 'default');
    const third = await storage.increment('k', 60_000, 2, 60_000, 'default');
    expect(third.isBlocked).toBe(true);
    expect(third.timeToBlockExpire).toBe(30);
  });

  it('consumes every bucket of a request in one call, all or nothing', async () => {
    const storage = new TokenBucketThrottlerStorage(withoutRedis, new GatewayConfig());
    const ip = { key: tokenBucketKey('ip', '203.0.113.1', 60), scope: 'ip' as const, rate: 3, windowSeconds: 60 };
    const tenant = { key: tokenBucketKey('tenant', 't', 60), scope: 'tenant' as const, rate: 1, windowSeconds: 60 };
    expect((await storage.consume([ip, tenant])).allowed).toBe(true);
    const refused = await storage.consume([ip, tenant]);
    expect(refused).toMatchObject({ allowed: false, deniedScope: 'tenant', store: 'local' });
    // The refusal took nothing from the IP bucket: 2 of its 3 tokens are left.
    expect(refused.results[0].remaining).toBe(2);
    expect((await storage.consume([ip])).results[0].remaining).toBe(1);
  });
});
