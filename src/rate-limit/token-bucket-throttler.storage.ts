import { Injectable, Logger, Optional } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Cluster } from 'ioredis';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;
import { GatewayException } from '../common/errors/gateway.exception';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { RedisService } from '../redis/redis.service';
import { ClusterTokenBucketConsumer } from './cluster-token-bucket';
import { LocalTokenBucketStore } from './local-token-bucket.store';
import { LuaScript, TOKEN_BUCKET_CONSUME_SCRIPT } from './redis-token-bucket.script';
import { ThrottledFailureLog } from './store-failure-log';
import { type ConsumeResult, type TokenBucket, assertValidBuckets, decideFromLevels, windowMsOf } from './token-bucket';

/** A hash read sent in the same round trip as the bucket script (the quota check's counters). */
export interface PiggybackRead {
  readonly key: string;
  readonly fields: readonly string[];
}

/** Which store decided: `none` = the `allow` policy let the request through unchecked. */
export type DecidingStore = 'redis' | 'local' | 'none';

export interface RateLimitOutcome extends ConsumeResult {
  readonly store: DecidingStore;
  /**
   * Replies of the piggybacked reads, in order; undefined when Redis did not answer (or is not
   * configured), so the caller falls back to what it knows locally.
   */
  readonly reads?: readonly (readonly (string | null)[])[];
}

const consumeScript = new LuaScript(TOKEN_BUCKET_CONSUME_SCRIPT);

/**
 * The `ThrottlerStorage` of @nestjs/throttler, backed by token buckets: Redis (shared by every
 * instance) with the in-process LocalTokenBucketStore as the single-instance store and as the
 * `local` failure policy.
 *
 * `increment()` is the framework's one-bucket contract. The gateway's guard calls `consume()`
 * instead: @nestjs/throttler calls its storage once per named throttler, which would cost one
 * Redis round trip per scope (ip, tenant minute, tenant hour, route) and could not be atomic
 * across them; `consume()` checks every bucket of a request in ONE EVALSHA (all or nothing), and
 * pipelines the quota counters' HMGET behind it, so the request pays one round trip for both.
 */
@Injectable()
export class TokenBucketThrottlerStorage implements ThrottlerStorage {
  private readonly logger = new Logger('RateLimit');
  private readonly local = new LocalTokenBucketStore();
  private readonly failureLog = new ThrottledFailureLog(10_000);
  private readonly keyPrefix: string;
  private readonly policy: GatewayConfig['rateLimit']['onStoreFailure'];
  /** Set on a Redis Cluster, where the one-pipeline call below would mix slots (CROSSSLOT). */
  private readonly cluster?: ClusterTokenBucketConsumer;

  constructor(
    private readonly redis: RedisService,
    config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    this.keyPrefix = redis.key('rl', '');
    this.policy = config.rateLimit.onStoreFailure;
    if (redis.client?.isCluster) this.cluster = new ClusterTokenBucketConsumer(redis.client as Cluster, this.keyPrefix);
  }

  /** @nestjs/throttler's contract: one fixed-size bucket of `limit` per `ttl` milliseconds. */
  async increment(key: string, ttl: number, limit: number, _blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    const windowSeconds = Math.max(1, Math.ceil(ttl / 1000));
    const bucket: TokenBucket = { key: `{th:${throttlerName}:${key}}:${windowSeconds}`, scope: 'route', rate: limit, windowSeconds };
    const outcome = await this.consume([bucket]);
    const result = outcome.results[0];
    return {
      totalHits: result ? result.limit - result.remaining : 0,
      timeToExpire: result?.resetSeconds ?? 0,
      isBlocked: !outcome.allowed,
      timeToBlockExpire: outcome.retryAfterSeconds ?? 0,
    };
  }

  /**
   * Consumes one token from every bucket or from none, and reads `reads` in the same round trip.
   * Never rejects because the store failed under the `local` and `allow` policies; under `deny`
   * it throws 503 `unavailable`.
   */
  async consume(buckets: readonly TokenBucket[], reads: readonly PiggybackRead[] = []): Promise<RateLimitOutcome> {
    const client = this.redis.client;
    if (client === undefined) return { ...(await this.local.consume(buckets)), store: 'local' };
    if (this.redis.ready) {
      try {
        return await this.consumeOnRedis(buckets, reads);
      } catch (error) {
        this.storeFailed(error as Error);
      }
    } else {
      this.storeFailed(new Error(`connection is ${client.status}`));
    }
    switch (this.policy) {
      case 'local':
        return { ...(await this.local.consume(buckets)), store: 'local' };
      case 'allow':
        return { allowed: true, results: [], store: 'none' };
      case 'deny':
        throw new GatewayException('unavailable', 'The rate-limit store is unavailable.', {}, { 'retry-after': 1 });
    }
  }

  /**
   * Every bucket and the usage read in one round trip (below). On a Redis Cluster the same work
   * goes out as concurrent calls, one per slot (ClusterTokenBucketConsumer): still one round trip
   * of latency.
   */
  private async consumeOnRedis(buckets: readonly TokenBucket[], reads: readonly PiggybackRead[]): Promise<RateLimitOutcome> {
    assertValidBuckets(buckets, 1);
    if (this.cluster) {
      const { decision, reads: readReplies } = await this.cluster.consume(buckets, reads);
      return { ...decision, store: 'redis', reads: readReplies };
    }
    // One round trip: the EVALSHA of every bucket and the HMGETs are issued with no await in
    // between, so the connection's automatic pipelining sends them in one socket write (with
    // whatever other requests issued them in the same turn of the event loop) and their replies
    // come back together. A NOSCRIPT answer (Redis restarted or flushed its scripts) is repaired
    // with EVAL, which also caches the script again.
    const client = this.redis.client!;
    let levels: Promise<unknown> | undefined;
    if (buckets.length > 0) {
      const keys = buckets.map((bucket) => this.keyPrefix + bucket.key);
      const args: (string | number)[] = [1];
      for (const bucket of buckets) args.push(bucket.rate, windowMsOf(bucket), bucket.burst ?? bucket.rate);
      levels = consumeScript.run(client, keys, args);
    }
    const readReplies = reads.length > 0 ? Promise.all(reads.map((read) => client.hmget(read.key, ...read.fields))) : undefined;
    // Observed at once, so a failed read is not reported as unhandled while the script is awaited.
    readReplies?.catch(() => undefined);
    const decision = levels ? decideFromLevels(buckets, ((await levels) as number[]).slice(1), 1) : decideFromLevels([], [], 1);
    return { ...decision, store: 'redis', reads: readReplies ? await readReplies : [] };
  }

  private storeFailed(error: Error): void {
    this.metrics?.storeError('redis');
    const count = this.failureLog.failed();
    if (count !== undefined) {
      this.logger.warn(
        `rate-limit store (Redis) failed ${count} time(s): ${error.message}; policy onStoreFailure=${this.policy}` +
          (this.policy === 'local' ? ' (in-process buckets until Redis answers)' : ''),
      );
    }
  }
}
