interface Slot<V> {
  value: V;
  expiresAt: number;
}

/**
 * A bounded cache with a time to live per entry, evicting the least recently used entry when
 * full. A Map keeps insertion order, so re-inserting on every hit makes its first key the
 * least recently used one: O(1) for get, set and eviction.
 */
export class LruCache<K, V> {
  private readonly slots = new Map<K, Slot<V>>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (maxEntries < 1) throw new Error('LruCache needs room for at least one entry');
  }

  get size(): number {
    return this.slots.size;
  }

  get(key: K): V | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    if (slot.expiresAt <= this.now()) {
      this.slots.delete(key);
      return undefined;
    }
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.value;
  }

  set(key: K, value: V): void {
    this.slots.delete(key);
    if (this.slots.size >= this.maxEntries) {
      const oldest = this.slots.keys().next();
      if (!oldest.done) this.slots.delete(oldest.value);
    }
    this.slots.set(key, { value, expiresAt: this.now() + this.ttlMs });
  }

  delete(key: K): boolean {
    return this.slots.delete(key);
  }

  /** Drops every entry the predicate selects; returns how many. Admin-rate, so a scan is fine. */
  deleteWhere(predicate: (value: V, key: K) => boolean): number {
    let dropped = 0;
    for (const [key, slot] of this.slots) {
      if (predicate(slot.value, key)) {
        this.slots.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  clear(): void {
    this.slots.clear();
  }
}
