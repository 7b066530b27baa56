/**
 * Concurrent callers asking for the same key share one in-flight promise, so a burst of
 * requests with one uncached key id costs one database lookup, not one per request.
 */
export class SingleFlight<K, V> {
  private readonly inFlight = new Map<K, Promise<V>>();

  run(key: K, work: () => Promise<V>): Promise<V> {
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const promise = work().finally(() => {
      // Only remove our own promise: forget() may already have made room for a newer one.
      if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
    });
    this.inFlight.set(key, promise);
    return promise;
  }

  /** Later callers start a fresh lookup (after an invalidation, the pending one may be stale). */
  forget(key?: K): void {
    if (key === undefined) this.inFlight.clear();
    else this.inFlight.delete(key);
  }

  get pending(): number {
    return this.inFlight.size;
  }
}
