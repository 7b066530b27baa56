import {
  type ConsumeResult,
  msUntilFull,
  type TokenBucket,
  type TokenBucketState,
  type TokenBucketStore,
  tryConsumeAll,
} from './token-bucket';

export interface LocalTokenBucketStoreOptions {
  /**
   * Upper bound on buckets held. A flood of distinct client IPs must not grow memory without limit;
   * past the bound the least recently used bucket is dropped (it then counts as full again, which
   * admits a little more for that one key: bounded memory wins over exactness under such a flood).
   */
  readonly maxEntries?: number;
  /** Milliseconds; injectable so tests control time. */
  readonly clock?: () => number;
}

interface Entry {
  state: TokenBucketState;
  /** When the bucket is full again, i.e. indistinguishable from an absent entry. */
  expiresAtMs: number;
}

/** Entries examined per call by the lazy sweep: constant work per request, no timer. */
const SWEEP_PER_CALL = 4;

/**
 * In-process token buckets: the store of the embedded dev mode (no Redis) and of the `local`
 * `onStoreFailure` policy, where each instance enforces the configured limits on its own until
 * Redis answers again. Same arithmetic as the Redis script, so both admit the same sequences.
 */
export class LocalTokenBucketStore implements TokenBucketStore {
  /** Map iteration order doubles as recency order: every touch re-inserts at the end. */
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly clock: () => number;

  constructor(options: LocalTokenBucketStoreOptions = {}) {
    this.maxEntries = options.maxEntries ?? 100_000;
    this.clock = options.clock ?? Date.now;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new RangeError(`maxEntries must be an integer ≥ 1, got ${this.maxEntries}`);
    }
  }

  /** Buckets currently held (full buckets may linger until swept). */
  get size(): number {
    return this.entries.size;
  }

  // async so that a misconfigured bucket rejects the promise like a store failure would, never throws.
  async consume(buckets: readonly TokenBucket[], cost = 1): Promise<ConsumeResult> {
    return this.consumeNow(buckets, cost);
  }

  /** The same decision without a promise, for callers on the request path that need no I/O. */
  consumeNow(buckets: readonly TokenBucket[], cost = 1): ConsumeResult {
    const nowMs = this.clock();
    this.sweep(nowMs);
    const outcome = tryConsumeAll(
      buckets.map((bucket) => this.entries.get(bucket.key)?.state),
      buckets,
      nowMs,
      cost,
    );
    if (outcome.allowed) {
      buckets.forEach((bucket, i) => {
        const state = outcome.nextStates[i];
        this.touch(bucket.key, { state, expiresAtMs: nowMs + msUntilFull(state.scaledTokens, bucket) });
      });
      this.enforceBound();
    } else {
      // A client being denied is active: keep its buckets away from the eviction end.
      for (const bucket of buckets) {
        const entry = this.entries.get(bucket.key);
        if (entry !== undefined) this.touch(bucket.key, entry);
      }
    }
    const { allowed, results, retryAfterSeconds, deniedScope } = outcome;
    return allowed ? { allowed, results } : { allowed, results, retryAfterSeconds, deniedScope };
  }

  private touch(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  /** Drops refilled buckets from the least recently used end; stops at the first live one. */
  private sweep(nowMs: number): void {
    let examined = 0;
    for (const [key, entry] of this.entries) {
      if (examined++ === SWEEP_PER_CALL || entry.expiresAtMs > nowMs) return;
      this.entries.delete(key);
    }
  }

  private enforceBound(): void {
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) return;
      this.entries.delete(key);
    }
  }
}
