import { LruCache } from './lru-cache';

describe('LruCache', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => (now = 1_000));

  it('returns what was set until the TTL passes', () => {
    const cache = new LruCache<string, number>(10, 500, clock);
    cache.set('a', 1);
    expect(cache.get('a')).toBe(1);
    now += 499;
    expect(cache.get('a')).toBe(1);
    now += 1;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('evicts the least recently used entry when full', () => {
    const cache = new LruCache<string, number>(2, 10_000, clock);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recent
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
    expect(cache.size).toBe(2);
  });

  it('re-setting a key refreshes its TTL and does not evict another entry', () => {
    const cache = new LruCache<string, number>(2, 100, clock);
    cache.set('a', 1);
    cache.set('b', 2);
    now += 90;
    cache.set('a', 10);
    expect(cache.size).toBe(2);
    now += 50;
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(10);
  });

  it('deletes by key and by predicate', () => {
    const cache = new LruCache<string, { tenant: string }>(10, 1_000, clock);
    cache.set('k1', { tenant: 't1' });
    cache.set('k2', { tenant: 't1' });
    cache.set('k3', { tenant: 't2' });
    expect(cache.deleteWhere((v) => v.tenant === 't1')).toBe(2);
    expect(cache.get('k3')).toEqual({ tenant: 't2' });
    expect(cache.delete('k3')).toBe(true);
    cache.set('k4', { tenant: 't3' });
    cache.clear();
    expect(cache.size).toBe(0);
  });
});
