import type { Cluster } from 'ioredis';
import { RedisTokenBucketStore } from './redis-token-bucket.script';
import type { ConsumeResult, TokenBucket } from './token-bucket';

/** A hash read answered beside the bucket check (the quota check's month view). */
export interface ClusterHashRead {
  readonly key: string;
  readonly fields: readonly string[];
}

export interface ClusterConsumeReply {
  readonly decision: ConsumeResult;
  readonly reads: (string | null)[][];
}

/**
 * The rate limiter's Redis call on a Redis Cluster, where one script or pipeline may only touch
 * keys of one slot (otherwise CROSSSLOT). The buckets of a request live in up to three slots
 * (`{ip:…}`, `{t:<tenant>}`, `{r:…}`), so RedisTokenBucketStore runs one script per hash tag and
 * refunds the groups that admitted when another denied; each HMGET is its own command. All of
 * them are sent at once: one round trip of latency, several commands. The month view shares
 * the tenant's slot, so it lands on the same node as the tenant's script.
 *
 * Any failed command fails the whole call (after the refunds), like a failed reply in the
 * standalone pipeline, so the caller's `onStoreFailure` policy decides the request.
 */
export class ClusterTokenBucketConsumer {
  private readonly store: RedisTokenBucketStore;

  constructor(
    private readonly client: Cluster,
    keyPrefix: string,
  ) {
    this.store = new RedisTokenBucketStore(client, keyPrefix, { scriptPerHashTag: true });
  }

  async consume(buckets: readonly TokenBucket[], reads: readonly ClusterHashRead[]): Promise<ClusterConsumeReply> {
    const [decision, replies] = await Promise.all([
      this.store.consume(buckets, 1),
      Promise.all(reads.map((read) => this.client.hmget(read.key, ...read.fields))),
    ]);
    return { decision, reads: replies };
  }
}
