import { CachedEntry } from './cached-entry';
import { MemoryTier } from './memory-tier';
import { ResponseHead } from './response-head';

function entry(key: string, bytes: number, options: { tenantId?: string; source?: string; expiresAt?: number } = {}): CachedEntry {
  return new CachedEntry(
    { key, base: key, tenantId: options.tenantId ?? 't1', source: options.source ?? `local:///${key}`, varyNames: [], storedAt: 0, expiresAt: options.expiresAt ?? Number.MAX_SAFE_INTEGER },
    new ResponseHead(200, ['content-type', 'image/webp']),
    Buffer.alloc(bytes, 1),
  );
}

describe('memory tier', () => {
  it('stays within its byte budget, evicting the least recently used first', () => {
    const removed: string[] = [];
    const tier = new MemoryTier({ maxBytes: 10_000, maxEntryBytes: 10_000, onRemove: (e, evicted) => evicted && removed.push(e.key) });
    for (const key of ['a', 'b', 'c']) tier.set(entry(key, 2_500));
    tier.get('a', 0);
    tier.set(entry('d', 2_500));
    expect(tier.bytes).toBeLessThanOrEqual(10_000);
    expect(removed).toEqual(['b']);
    expect(tier.get('a', 0)).toBeDefined();
    expect(tier.get('b', 0)).toBeUndefined();
  });

  it('counts the body, the headers and the bookkeeping of an entry', () => {
    const tier = new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20 });
    const e = entry('a', 1000);
    tier.set(e);
    expect(tier.bytes).toBe(e.size);
    expect(e.size).toBeGreaterThan(1000 + 'content-type'.length + 'image/webp'.length);
  });

  it('refuses entries above maxEntryBytes without evicting anything', () => {
    const removed: string[] = [];
    const tier = new MemoryTier({ maxBytes: 100_000, maxEntryBytes: 5_000, onRemove: (e) => removed.push(e.key) });
    tier.set(entry('small', 1_000));
    expect(tier.set(entry('big', 6_000))).toBe(false);
    expect(tier.get('big', 0)).toBeUndefined();
    expect(removed).toEqual([]);
  });

  it('drops an expired entry when it is looked up', () => {
    const tier = new MemoryTier({ maxBytes: 100_000, maxEntryBytes: 100_000 });
    tier.set(entry('a', 10, { expiresAt: 1_000 }));
    expect(tier.get('a', 999)).toBeDefined();
    expect(tier.get('a', 1_000)).toBeUndefined();
    expect(tier.count).toBe(0);
  });

  it('purges what a selector matches and reports the count', () => {
    const tier = new MemoryTier({ maxBytes: 100_000, maxEntryBytes: 100_000 });
    tier.set(entry('a', 10, { tenantId: 't1', source: 'local:///avatars/a.jpg' }));
    tier.set(entry('b', 10, { tenantId: 't1', source: 'local:///banners/b.jpg' }));
    tier.set(entry('c', 10, { tenantId: 't2', source: 'local:///avatars/c.jpg' }));
    expect(tier.purge((e) => e.tenantId === 't1' && e.source.startsWith('local:///avatars/'))).toBe(1);
    expect([tier.get('a', 0), tier.get('b', 0), tier.get('c', 0)].map(Boolean)).toEqual([false, true, true]);
  });
});
