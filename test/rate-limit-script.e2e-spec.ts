/**
 * The Redis token-bucket script against a real Redis (docs/rate-limits-and-quotas.md): exact limits across clients,
 * all-or-nothing consumption, refill and expiry on Redis time, and the same decisions as the
 * in-process store. Keys live under a prefix unique to the run and are deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import { LocalTokenBucketStore } from '../src/rate-limit/local-token-bucket.store';
import {
  LuaScript,
  RedisTokenBucketStore,
  TOKEN_BUCKET_CONSUME_SCRIPT,
} from '../src/rate-limit/redis-token-bucket.script';
import {
  type ConsumeResult,
  type TokenBucket,
  type TokenBucketStore,
  tokenBucketKey,
} from '../src/rate-limit/token-bucket';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `igw-test-${randomBytes(6).toString('hex')}:`;

let first: Redis;
let second: Redis;

beforeAll(() => {
  first = new Redis(REDIS_URL);
  second = new Redis(REDIS_URL);
});

afterAll(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await first.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await first.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await Promise.all([first.quit(), second.quit()]);
});

/** Each test gets its own buckets, so tests cannot drain each other's. */
let testId = 0;
beforeEach(() => {
  testId++;
});

const tenantMinute = (rate: number, extra: Partial<TokenBucket> = {}): TokenBucket => ({
  key: tokenBucketKey('tenant', `tenant-${testId}`, 60),
  scope: 'tenant',
  rate,
  windowSeconds: 60,
  ...extra,
});
const routeMinute = (rate: number): TokenBucket => ({
  key: tokenBucketKey('route', `proxy-${testId}`, 60),
  scope: 'route',
  rate,
  windowSeconds: 60,
});

async function admittedOf(store: TokenBucketStore, buckets: TokenBucket[], attempts: number): Promise<number> {
  let admitted = 0;
  for (let i = 0; i < attempts; i++) if ((await store.consume(buckets)).allowed) admitted++;
  return admitted;
}

describe('RedisTokenBucketStore on a real Redis', () => {
  it('admits exactly the limit when 50 requests race through two clients', async () => {
    const stores = [new RedisTokenBucketStore(first, prefix), new RedisTokenBucketStore(second, prefix)];
    const bucket = tenantMinute(30);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => stores[i % 2].consume([bucket])),
    );
    const admitted = results.filter((result) => result.allowed);
    expect(admitted).toHaveLength(30);
    // Each admitted request saw its own token: remaining counts down without a repeat.
    expect(admitted.map((result) => result.results[0].remaining).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_, i) => i),
    );
    const denied = results.find((result) => !result.allowed);
    expect(denied).toMatchObject({ deniedScope: 'tenant', retryAfterSeconds: 2 });
  });

  it('consumes from no bucket when one bucket of the request denies', async () => {
    const store = new RedisTokenBucketStore(first, prefix);
    const tenant = tenantMinute(5);
    const route = routeMinute(2);
    expect(await admittedOf(store, [tenant, route], 4)).toBe(2);
    const denied = await store.consume([tenant, route]);
    expect(denied).toMatchObject({ allowed: false, deniedScope: 'route', retryAfterSeconds: 30 });
    expect(denied.results.map((result) => result.remaining)).toEqual([3, 0]);
    expect(await admittedOf(store, [tenant], 5)).toBe(3);
  });

  it('charges a cost to every bucket in one call', async () => {
    const store = new RedisTokenBucketStore(first, prefix);
    const tenant = tenantMinute(10);
    const route = routeMinute(4);
    expect((await store.consume([tenant, route], 3)).results.map((r) => r.remaining)).toEqual([7, 1]);
    const denied = await store.consume([tenant, route], 2);
    expect(denied).toMatchObject({ allowed: false, deniedScope: 'route', retryAfterSeconds: 15 });
    expect((await store.consume([tenant], 7)).allowed).toBe(true);
  });

  it('refills on Redis time with an arbitrary window and lets full buckets expire', async () => {
    const store = new RedisTokenBucketStore(first, prefix);
    const bucket: TokenBucket = {
      key: tokenBucketKey('ip', `192.0.2.${testId}`, 1),
      scope: 'ip',
      rate: 2,
      windowSeconds: 1,
    };
    expect(await admittedOf(store, [bucket], 2)).toBe(2);
    const denied = await store.consume([bucket]);
    expect(denied).toMatchObject({ allowed: false, deniedScope: 'ip', retryAfterSeconds: 1 });
    expect(denied.results[0]).toMatchObject({ remaining: 0, resetSeconds: 1 });

    const ttl = await first.pttl(prefix + bucket.key);
    expect(ttl).toBeGreaterThan(800);
    expect(ttl).toBeLessThanOrEqual(1000);

    await sleep(700); // one token every 500 ms: the next one is 300 ms away
    expect(await admittedOf(store, [bucket], 3)).toBe(1);

    await sleep(1100); // full again: the state expired, as an absent bucket means a full one
    expect(await first.exists(prefix + bucket.key)).toBe(0);
    expect(await admittedOf(store, [bucket], 3)).toBe(2);
  });

  it('keeps large levels exact (a million-token hourly burst)', async () => {
    const store = new RedisTokenBucketStore(first, prefix);
    const bucket = tenantMinute(1000, { windowSeconds: 3600, burst: 1_000_000 });
    await store.consume([bucket], 999);
    const result = await store.consume([bucket]);
    expect(result.results[0].remaining).toBe(999_000);
  });

  describe('one script per hash tag (the Redis Cluster path, run here on a standalone server)', () => {
    it('refunds the groups that admitted when another group denied', async () => {
      const store = new RedisTokenBucketStore(first, prefix, { scriptPerHashTag: true });
      const tenant = tenantMinute(5);
      const route = routeMinute(2);
      expect(await admittedOf(store, [tenant, route], 4)).toBe(2);
      const denied = await store.consume([tenant, route]);
      expect(denied).toMatchObject({ allowed: false, deniedScope: 'route' });
      expect(denied.results.map((result) => result.remaining)).toEqual([3, 0]);
      expect(await admittedOf(store, [tenant], 5)).toBe(3);
    });

    it('stays exact under concurrency and refunds every denied request', async () => {
      const stores = [
        new RedisTokenBucketStore(first, prefix, { scriptPerHashTag: true }),
        new RedisTokenBucketStore(second, prefix, { scriptPerHashTag: true }),
      ];
      const tenant = tenantMinute(30, { windowSeconds: 3600 });
      const route = { ...routeMinute(40), windowSeconds: 3600 };
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => stores[i % 2].consume([tenant, route])),
      );
      expect(results.filter((result) => result.allowed)).toHaveLength(30);
      // 30 admitted took 30 of the route's 40; the 20 denied ones gave theirs back.
      expect((await stores[0].consume([route])).results[0].remaining).toBe(9);
    });
  });

  it('falls back to EVAL when the script is not cached, which caches it', async () => {
    const script = new LuaScript(`${TOKEN_BUCKET_CONSUME_SCRIPT}-- ${prefix}\n`);
    expect(await first.script('EXISTS', script.sha1)).toEqual([0]);
    const key = `${prefix}fallback`;
    expect(await script.run(first, [key], [1, 1, 60_000, 1])).toEqual([1, 60_000]);
    expect(await second.script('EXISTS', script.sha1)).toEqual([1]);
    expect(await script.run(second, [key], [1, 1, 60_000, 1])).toEqual([0, expect.any(Number)]);
  });

  it('passes script errors other than NOSCRIPT through', async () => {
    const script = new LuaScript(`return redis.call('NO-SUCH-COMMAND') -- ${prefix}`);
    await expect(script.run(first, [], [])).rejects.toThrow(/unknown command|Unknown Redis command/i);
  });

  it('decides exactly like the in-process store', async () => {
    const local = new LocalTokenBucketStore();
    const single = new RedisTokenBucketStore(first, `${prefix}single:`);
    const grouped = new RedisTokenBucketStore(second, `${prefix}grouped:`, { scriptPerHashTag: true });
    const id = `parity-${testId}`;
    const pool: TokenBucket[] = [
      { key: tokenBucketKey('ip', id, 3600), scope: 'ip', rate: 40, windowSeconds: 3600 },
      // One token per 2 s: the pause below refills exactly one, far from any token boundary.
      { key: tokenBucketKey('tenant', id, 6), scope: 'tenant', rate: 3, windowSeconds: 6 },
      { key: tokenBucketKey('tenant', id, 3600), scope: 'tenant', rate: 12, windowSeconds: 3600, burst: 14 },
      { key: tokenBucketKey('route', id, 3600), scope: 'route', rate: 9, windowSeconds: 3600 },
      {
        key: tokenBucketKey('route', `${id}-big`, 3600),
        scope: 'route',
        rate: 1000,
        windowSeconds: 3600,
        burst: 1_000_000,
      },
    ];
    let seed = 20240601;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const summary = (result: ConsumeResult) => ({
      allowed: result.allowed,
      deniedScope: result.deniedScope,
      remaining: result.results.map((r) => r.remaining),
    });

    const sequences: Record<'local' | 'single' | 'grouped', unknown[]> = { local: [], single: [], grouped: [] };
    for (let step = 0; step < 80; step++) {
      if (step === 40) await sleep(3000);
      const buckets = pool.filter(() => random(3) > 0);
      const cost = 1 + random(3);
      sequences.local.push(summary(await local.consume(buckets, cost)));
      sequences.single.push(summary(await single.consume(buckets, cost)));
      sequences.grouped.push(summary(await grouped.consume(buckets, cost)));
    }
    expect(sequences.single).toEqual(sequences.local);
    expect(sequences.grouped).toEqual(sequences.local);
    const decisions = sequences.local.map((entry) => (entry as { allowed: boolean }).allowed);
    // Not vacuous: the sequence both admits and refuses.
    expect(decisions.filter(Boolean).length).toBeGreaterThan(10);
    expect(decisions.filter((allowed) => !allowed).length).toBeGreaterThan(10);
  });
});
