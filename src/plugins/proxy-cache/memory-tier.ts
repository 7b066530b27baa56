import { LRUCache } from 'lru-cache';
import type { CachedEntry } from './cached-entry';

export interface MemoryTierOptions {
  /** Budget of every entry's `size` together. */
  maxBytes: number;
  /** Larger entries are not kept. */
  maxEntryBytes: number;
  /** An entry left the tier; `evicted` when it made room for another. */
  onRemove?: (entry: CachedEntry, evicted: boolean) => void;
}

/**
 * The memory tier: entries in least-recently-used order, bounded by bytes (lru-cache's
 * `maxSize`), not by count, since an image can be 200 bytes or 8 MiB.
 */
export class MemoryTier {
  private readonly lru: LRUCache<string, CachedEntry>;

  constructor(options: MemoryTierOptions) {
    const onRemove = options.onRemove;
    this.lru = new LRUCache<string, CachedEntry>({
      maxSize: options.maxBytes,
      maxEntrySize: Math.min(options.maxEntryBytes, options.maxBytes),
      sizeCalculation: (entry) => entry.size,
      dispose: onRemove ? (entry, _key, reason) => onRemove(entry, reason === 'evict') : undefined,
    });
  }

  /** The entry, made most recently used; an expired one is dropped and not returned. */
  get(key: string, now: number): CachedEntry | undefined {
    const entry = this.lru.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.lru.delete(key);
      return undefined;
    }
    return entry;
  }

  /** False when the entry is too large to keep. */
  set(entry: CachedEntry): boolean {
    if (entry.size > this.lru.maxEntrySize) return false;
    this.lru.set(entry.key, entry);
    return true;
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  /** Drops every entry `match` selects; returns how many. */
  purge(match: (entry: CachedEntry) => boolean): number {
    const doomed: string[] = [];
    for (const [key, entry] of this.lru.entries()) if (match(entry)) doomed.push(key);
    for (const key of doomed) this.lru.delete(key);
    return doomed.length;
  }

  clear(): void {
    this.lru.clear();
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get count(): number {
    return this.lru.size;
  }
}
