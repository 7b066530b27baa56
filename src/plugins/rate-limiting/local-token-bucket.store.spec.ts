import { LocalTokenBucketStore } from './local-token-bucket.store';
import { type TokenBucket, tokenBucketKey } from './token-bucket';

const ipOf = (n: number): TokenBucket => ({
  key: tokenBucketKey('ip', `198.51.100.${n}`, 60),
  scope: 'ip',
  rate: 3,
  windowSeconds: 60,
});

describe('LocalTokenBucketStore', () => {
  let nowMs: number;
  const clock = () => nowMs;

  beforeEach(() => {
    nowMs = 1_700_000_000_000;
  });

  async function admitted(store: LocalTokenBucketStore, buckets: TokenBucket[], attempts: number): Promise<number> {
    let count = 0;
    for (let i = 0; i < attempts; i++) if ((await store.consume(buckets)).allowed) count++;
    return count;
  }

  it('enforces every bucket of a request and consumes from none on rejection', async () => {
    const store = new LocalTokenBucketStore({ clock });
    const tenant: TokenBucket = {
      key: tokenBucketKey('tenant', 't1', 60),
      scope: 'tenant',
      rate: 4,
      windowSeconds: 60,
    };
    const route: TokenBucket = {
      key: tokenBucketKey('route', 'proxy', 60),
      scope: 'route',
      rate: 2,
      windowSeconds: 60,
    };

    expect(await admitted(store, [tenant, route], 5)).toBe(2);
    const denied = await store.consume([tenant, route]);
    expect(denied).toEqual({
      allowed: false,
      results: [
        { scope: 'tenant', limit: 4, rate: 4, remaining: 2, resetSeconds: 30, windowSeconds: 60 },
        { scope: 'route', limit: 2, rate: 2, remaining: 0, resetSeconds: 60, windowSeconds: 60 },
      ],
      retryAfterSeconds: 30,
      deniedScope: 'route',
    });
    expect(await admitted(store, [tenant], 5)).toBe(2);
  });

  it('refills with the injected clock and charges a cost', async () => {
    const store = new LocalTokenBucketStore({ clock });
    const bucket = ipOf(1); // one token per 20 s
    expect((await store.consume([bucket], 3)).allowed).toBe(true);
    nowMs += 39_999;
    expect((await store.consume([bucket], 2)).allowed).toBe(false);
    nowMs += 1;
    const result = await store.consume([bucket], 2);
    expect(result.allowed).toBe(true);
    expect(result.results[0]).toMatchObject({ remaining: 0, resetSeconds: 60 });
  });

  it('keeps no entry for buckets that were only denied or never touched', async () => {
    const store = new LocalTokenBucketStore({ clock });
    const free = ipOf(1);
    const full: TokenBucket = { ...ipOf(2), rate: 1 };
    await store.consume([full]);
    expect(store.size).toBe(1);
    await store.consume([free, full]); // denied by `full`: `free` is not stored
    expect(store.size).toBe(1);
  });

  it('evicts buckets once they are full again, lazily', async () => {
    const store = new LocalTokenBucketStore({ clock });
    for (let n = 0; n < 3; n++) await store.consume([ipOf(n)]);
    expect(store.size).toBe(3);
    nowMs += 20_000; // one token back: every bucket full again
    await store.consume([ipOf(99)]);
    expect(store.size).toBe(1);
  });

  it('stays within maxEntries under a flood of distinct keys, dropping the least recently used', async () => {
    const store = new LocalTokenBucketStore({ clock, maxEntries: 100 });
    const hot = ipOf(0);
    expect(await admitted(store, [hot], 3)).toBe(3);
    for (let n = 1; n <= 1000; n++) {
      await store.consume([ipOf(n)]);
      // The limited client keeps knocking; being denied keeps its bucket from being evicted.
      if (n % 50 === 0) expect((await store.consume([hot])).allowed).toBe(false);
    }
    expect(store.size).toBe(100);
    expect((await store.consume([hot])).allowed).toBe(false);
  });

  it('refuses an invalid maxEntries', () => {
    expect(() => new LocalTokenBucketStore({ maxEntries: 0 })).toThrow(RangeError);
  });
});
