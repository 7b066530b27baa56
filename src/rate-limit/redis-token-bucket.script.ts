import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import {
  assertValidBuckets,
  type ConsumeResult,
  decideFromLevels,
  type TokenBucket,
  type TokenBucketStore,
  windowMsOf,
} from './token-bucket';

/*
 * Both scripts take KEYS = one hash per bucket (field l = scaled tokens, t = last update in ms) and
 * ARGV = cost, then rate, windowMs and burst for each key. Time comes from Redis (TIME), never from
 * the gateway, so instances with skewed clocks share one timeline. Numbers are written with
 * %.0f: Redis would otherwise format them with 14 significant digits and round large levels.
 * `redis.replicate_commands` lets TIME precede writes on Redis < 5; later versions always replicate
 * effects and keep the call as a no-op.
 */

/**
 * Mirrors `refill` and `decideFromLevels` of token-bucket.ts: change one, change the other (the
 * parity test in test/rate-limit-script.e2e-spec.ts compares them). Consumes `cost` from every
 * bucket only if each holds it; a rejected request writes nothing. A written bucket expires when it
 * would be full again, since an absent bucket counts as full.
 * Returns { 1 if admitted else 0, each bucket's refilled level before consumption }.
 */
export const TOKEN_BUCKET_CONSUME_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local cost = tonumber(ARGV[1])
local reply = {1}
for i, key in ipairs(KEYS) do
  local a = 2 + (i - 1) * 3
  local rate, windowMs = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local capacity = tonumber(ARGV[a + 2]) * windowMs
  local level = capacity
  local stored = redis.call('HMGET', key, 'l', 't')
  local l, t = tonumber(stored[1]), tonumber(stored[2])
  if l and t then
    level = math.min(capacity, l + math.max(0, now - t) * rate)
  end
  reply[i + 1] = level
  if level < cost * windowMs then reply[1] = 0 end
end
if reply[1] == 1 then
  for i, key in ipairs(KEYS) do
    local a = 2 + (i - 1) * 3
    local rate, windowMs = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    local capacity = tonumber(ARGV[a + 2]) * windowMs
    local left = reply[i + 1] - cost * windowMs
    redis.call('HSET', key, 'l', string.format('%.0f', left), 't', string.format('%.0f', now))
    redis.call('PEXPIRE', key, string.format('%.0f', math.ceil((capacity - left) / rate)))
  end
end
return reply
`;

/**
 * Gives `cost` back to every bucket (refilled to now, capped at the burst). Only the cluster path
 * needs it: there a request spans several slots, one script runs per slot, and a slot that admitted
 * while another denied must not keep the tokens ("a rejected request consumes from none").
 * A missing bucket is already full and stays missing.
 */
export const TOKEN_BUCKET_REFUND_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local cost = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local a = 2 + (i - 1) * 3
  local rate, windowMs = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local capacity = tonumber(ARGV[a + 2]) * windowMs
  local stored = redis.call('HMGET', key, 'l', 't')
  local l, t = tonumber(stored[1]), tonumber(stored[2])
  if l and t then
    local level = math.min(capacity, l + math.max(0, now - t) * rate + cost * windowMs)
    if level >= capacity then
      redis.call('DEL', key)
    else
      redis.call('HSET', key, 'l', string.format('%.0f', level), 't', string.format('%.0f', now))
      redis.call('PEXPIRE', key, string.format('%.0f', math.ceil((capacity - level) / rate)))
    end
  end
end
return 1
`;

/**
 * A Lua script run by EVALSHA, falling back to EVAL (which also caches it) when the server answers
 * NOSCRIPT: after a restart, a failover or SCRIPT FLUSH, and on each cluster node at first use.
 * Hand-rolled rather than `defineCommand`, which would add methods to a client another module owns
 * and needs casts to be typed.
 */
export class LuaScript {
  readonly sha1: string;

  constructor(readonly source: string) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis | Cluster, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha1, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

const consumeScript = new LuaScript(TOKEN_BUCKET_CONSUME_SCRIPT);
const refundScript = new LuaScript(TOKEN_BUCKET_REFUND_SCRIPT);

/**
 * The part of a key Redis Cluster hashes: the first non-empty `{…}`, else the whole key. Keys with
 * the same hash tag are in the same slot and may share a script.
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

export interface RedisTokenBucketStoreOptions {
  /**
   * One script per hash tag, run concurrently, instead of one script for all buckets. Defaults to
   * `client.isCluster`, where a script may only touch keys of one slot. Settable so that the cluster
   * path (grouping, refunds) can be exercised on a standalone server.
   */
  readonly scriptPerHashTag?: boolean;
}

interface Group {
  readonly indices: readonly number[];
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
}

interface GroupReply {
  readonly allowed: boolean;
  readonly levels: readonly number[];
}

/**
 * Token buckets shared by every gateway instance through Redis (docs/rate-limits-and-quotas.md).
 *
 * Standalone (and Sentinel) clients: all buckets of a request in one EVALSHA, one round trip,
 * atomic. Redis Cluster: a script may only touch keys that hash to one slot, so buckets are grouped
 * by hash tag (tenant minute + hour share `{t:<id>}`, see `tokenBucketKey`), one script per group
 * runs concurrently, and the results are combined. Atomicity is then per group: if one group denies
 * while others admitted, the admitted groups are refunded by a second script. Between the two calls
 * another request may see those tokens missing and be denied: that errs towards refusing, never
 * towards admitting more than the limit.
 */
export class RedisTokenBucketStore implements TokenBucketStore {
  private readonly scriptPerHashTag: boolean;

  constructor(
    private readonly client: Redis | Cluster,
    /** Prepended to every bucket key, e.g. `igw:rl:`. Must not contain `{`, or all keys share one slot. */
    private readonly keyPrefix: string,
    options: RedisTokenBucketStoreOptions = {},
  ) {
    this.scriptPerHashTag = options.scriptPerHashTag ?? client.isCluster;
  }

  async consume(buckets: readonly TokenBucket[], cost = 1): Promise<ConsumeResult> {
    assertValidBuckets(buckets, cost);
    if (buckets.length === 0) return decideFromLevels(buckets, [], cost);
    const groups = this.groupsOf(buckets, cost);
    if (groups.length === 1) {
      const reply = await this.consumeGroup(groups[0]);
      return decideFromLevels(buckets, reply.levels, cost);
    }
    return this.consumeGroups(buckets, groups, cost);
  }

  private async consumeGroups(
    buckets: readonly TokenBucket[],
    groups: readonly Group[],
    cost: number,
  ): Promise<ConsumeResult> {
    const settled = await Promise.allSettled(groups.map((group) => this.consumeGroup(group)));
    const admitted = groups.filter((_, i) => {
      const outcome = settled[i];
      return outcome.status === 'fulfilled' && outcome.value.allowed;
    });
    const failure = settled.find((outcome) => outcome.status === 'rejected');
    const refunds = admitted.length < groups.length ? admitted.map((group) => this.refundGroup(group)) : [];
    if (failure !== undefined) {
      // Best effort: the caller's onStoreFailure policy decides this request; report the first cause.
      await Promise.allSettled(refunds);
      throw failure.reason;
    }
    await Promise.all(refunds);
    const levels = new Array<number>(buckets.length);
    groups.forEach((group, g) => {
      const reply = (settled[g] as PromiseFulfilledResult<GroupReply>).value;
      group.indices.forEach((bucketIndex, k) => {
        levels[bucketIndex] = reply.levels[k];
      });
    });
    // Every group admitted exactly when every level holds the cost, so this agrees with the scripts.
    return decideFromLevels(buckets, levels, cost);
  }

  private async consumeGroup(group: Group): Promise<GroupReply> {
    const reply = (await consumeScript.run(this.client, group.keys, group.args)) as number[];
    return { allowed: reply[0] === 1, levels: reply.slice(1) };
  }

  private async refundGroup(group: Group): Promise<void> {
    await refundScript.run(this.client, group.keys, group.args);
  }

  private groupsOf(buckets: readonly TokenBucket[], cost: number): Group[] {
    if (!this.scriptPerHashTag) return [this.groupOf(buckets, buckets.map((_, i) => i), cost)];
    const byTag = new Map<string, number[]>();
    buckets.forEach((bucket, i) => {
      const tag = hashTagOf(this.keyPrefix + bucket.key);
      const indices = byTag.get(tag);
      if (indices === undefined) byTag.set(tag, [i]);
      else indices.push(i);
    });
    return [...byTag.values()].map((indices) => this.groupOf(buckets, indices, cost));
  }

  private groupOf(buckets: readonly TokenBucket[], indices: readonly number[], cost: number): Group {
    const keys: string[] = [];
    const args: (string | number)[] = [cost];
    for (const i of indices) {
      const bucket = buckets[i];
      keys.push(this.keyPrefix + bucket.key);
      args.push(bucket.rate, windowMsOf(bucket), bucket.burst ?? bucket.rate);
    }
    return { indices, keys, args };
  }
}
