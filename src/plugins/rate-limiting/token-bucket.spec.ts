import {
  type BucketResult,
  type ConsumeOutcome,
  mostRestrictive,
  refill,
  type TokenBucket,
  type TokenBucketState,
  tokenBucketKey,
  tryConsumeAll,
} from './token-bucket';

/** Drives `tryConsumeAll` the way a store does: an injectable clock and stored states. */
class Harness {
  nowMs = 1_700_000_000_000;
  private readonly states = new Map<string, TokenBucketState>();

  constructor(private readonly buckets: readonly TokenBucket[]) {}

  consume(cost = 1, buckets: readonly TokenBucket[] = this.buckets): ConsumeOutcome {
    const outcome = tryConsumeAll(
      buckets.map((bucket) => this.states.get(bucket.key)),
      buckets,
      this.nowMs,
      cost,
    );
    if (outcome.allowed) buckets.forEach((bucket, i) => this.states.set(bucket.key, outcome.nextStates[i]));
    return outcome;
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }

  admittedOf(attempts: number, buckets?: readonly TokenBucket[]): number {
    let admitted = 0;
    for (let i = 0; i < attempts; i++) if (this.consume(1, buckets).allowed) admitted++;
    return admitted;
  }
}

const ipBucket: TokenBucket = {
  key: tokenBucketKey('ip', '203.0.113.7', 60),
  scope: 'ip',
  rate: 100,
  windowSeconds: 60,
};
const tenantMinute: TokenBucket = { key: 'tenant-minute', scope: 'tenant', rate: 10, windowSeconds: 60 };
const tenantHour: TokenBucket = { key: 'tenant-hour', scope: 'tenant', rate: 15, windowSeconds: 3600 };
const route: TokenBucket = { key: 'route', scope: 'route', rate: 5, windowSeconds: 60 };

describe('token bucket arithmetic', () => {
  it('admits a full burst at once, then refuses', () => {
    const harness = new Harness([tenantMinute]);
    expect(harness.admittedOf(10)).toBe(10);
    const denied = harness.consume();
    expect(denied.allowed).toBe(false);
    expect(denied.deniedScope).toBe('tenant');
    expect(denied.results[0].remaining).toBe(0);
  });

  it('holds a burst larger than the rate but refills at the rate', () => {
    const bucket: TokenBucket = { key: 'b', scope: 'ip', rate: 60, windowSeconds: 60, burst: 120 };
    const harness = new Harness([bucket]);
    expect(harness.admittedOf(200)).toBe(120);
    harness.advance(10_000);
    expect(harness.admittedOf(50)).toBe(10);
    const result = harness.consume().results[0];
    expect(result.limit).toBe(120);
    expect(result.rate).toBe(60);
  });

  it('refills continuously at rate per window', () => {
    const harness = new Harness([tenantMinute]); // one token every 6 s
    harness.admittedOf(10);
    harness.advance(5_999);
    expect(harness.consume().allowed).toBe(false);
    harness.advance(1);
    expect(harness.consume().allowed).toBe(true);
    expect(harness.consume().allowed).toBe(false);
    harness.advance(30_000);
    expect(harness.admittedOf(10)).toBe(5);
  });

  it('never refills past the burst, however long the bucket sat idle', () => {
    const harness = new Harness([tenantMinute]);
    harness.admittedOf(3);
    harness.advance(24 * 3600 * 1000);
    expect(harness.admittedOf(20)).toBe(10);
  });

  it('a rejected request consumes from none of the other buckets', () => {
    const harness = new Harness([tenantMinute, route]);
    expect(harness.admittedOf(5)).toBe(5);
    const denied = harness.consume();
    expect(denied).toMatchObject({ allowed: false, deniedScope: 'route' });
    // The tenant bucket was not touched by the five refusals below either.
    expect(harness.admittedOf(5)).toBe(0);
    expect(denied.results.map((r) => r.remaining)).toEqual([5, 0]);
    expect(harness.admittedOf(10, [tenantMinute])).toBe(5);
  });

  it('charges a cost greater than one to every bucket, and only if every bucket can pay it', () => {
    const harness = new Harness([tenantMinute, route]);
    const first = harness.consume(3);
    expect(first.allowed).toBe(true);
    expect(first.results.map((r) => r.remaining)).toEqual([7, 2]);
    const second = harness.consume(3);
    expect(second.allowed).toBe(false);
    expect(second.results.map((r) => r.remaining)).toEqual([7, 2]);
    // route refills 1 token / 12 s: the third token arrives after 12 s.
    expect(second.retryAfterSeconds).toBe(12);
    expect(harness.consume(2).allowed).toBe(true);
  });

  it('refuses a cost no bucket could ever hold instead of promising a retry', () => {
    const harness = new Harness([route]);
    expect(() => harness.consume(6)).toThrow(RangeError);
  });

  it('rejects malformed buckets', () => {
    const bad = (bucket: Partial<TokenBucket>) => () =>
      tryConsumeAll([undefined], [{ ...tenantMinute, ...bucket }], 0);
    expect(bad({ rate: 0 })).toThrow(RangeError);
    expect(bad({ rate: 1.5 })).toThrow(RangeError);
    expect(bad({ windowSeconds: 0 })).toThrow(RangeError);
    expect(bad({ burst: 2 ** 40 })).toThrow(RangeError);
    expect(() => tryConsumeAll([undefined, undefined], [route, route], 0)).toThrow(/listed twice/);
  });

  describe('reset and retry-after', () => {
    it('reports seconds until full, rounded up, and 0 for a full bucket', () => {
      const harness = new Harness([tenantMinute]);
      expect(harness.consume().results[0]).toEqual({
        scope: 'tenant',
        limit: 10,
        rate: 10,
        remaining: 9,
        resetSeconds: 6,
        windowSeconds: 60,
      });
      harness.advance(2_500);
      // 8 + 5/12 tokens left: 9.5 s to full.
      expect(harness.consume().results[0]).toMatchObject({ remaining: 8, resetSeconds: 10 });
      harness.advance(60_000);
      const idle = tryConsumeAll([undefined], [tenantMinute], harness.nowMs, 1);
      expect(idle.results[0].resetSeconds).toBe(6);
    });

    it('gives the wait until every denying bucket holds the cost', () => {
      const harness = new Harness([ipBucket, tenantMinute, tenantHour]);
      expect(harness.admittedOf(10)).toBe(10); // minute empty, hour 5 left
      harness.advance(60_000); // minute full again, hour 5.25 (1 token per 240 s)
      expect(harness.admittedOf(5)).toBe(5); // minute 5, hour 0.25
      const denied = harness.consume();
      expect(denied).toMatchObject({ allowed: false, deniedScope: 'tenant', retryAfterSeconds: 180 });
      expect(denied.results.map((r) => r.remaining)).toEqual([95, 5, 0]);
      harness.advance(179_999);
      expect(harness.consume().allowed).toBe(false);
      harness.advance(1);
      expect(harness.consume().allowed).toBe(true);
    });

    it('rounds a sub-second wait up to one second', () => {
      const fast: TokenBucket = { key: 'fast', scope: 'ip', rate: 6000, windowSeconds: 60 }; // 1 / 10 ms
      const harness = new Harness([fast]);
      harness.admittedOf(6000);
      expect(harness.consume().retryAfterSeconds).toBe(1);
    });

    it('picks the deniedScope of the longest wait, not the first denial', () => {
      const slowRoute: TokenBucket = { key: 'slow', scope: 'route', rate: 1, windowSeconds: 60 };
      const quickIp: TokenBucket = { key: 'quick', scope: 'ip', rate: 1, windowSeconds: 1 };
      const harness = new Harness([quickIp, slowRoute]);
      expect(harness.consume().allowed).toBe(true);
      const denied = harness.consume();
      expect(denied).toMatchObject({ allowed: false, deniedScope: 'route', retryAfterSeconds: 60 });
    });
  });

  it('refill tolerates a clock that went backwards', () => {
    const state = { scaledTokens: 0, updatedAtMs: 10_000 };
    expect(refill(state, tenantMinute, 9_000)).toEqual({ scaledTokens: 0, updatedAtMs: 9_000 });
    expect(refill(undefined, tenantMinute, 9_000)).toEqual({ scaledTokens: 600_000, updatedAtMs: 9_000 });
  });
});

describe('mostRestrictive', () => {
  const result = (over: Partial<BucketResult>): BucketResult => ({
    scope: 'tenant',
    limit: 100,
    rate: 100,
    remaining: 50,
    resetSeconds: 30,
    windowSeconds: 60,
    ...over,
  });

  it('picks the least remaining relative to its limit', () => {
    const ip = result({ scope: 'ip', limit: 100, remaining: 40 });
    const hour = result({ limit: 10_000, remaining: 3_000, windowSeconds: 3600 });
    expect(mostRestrictive([ip, hour])).toBe(hour);
  });

  it('breaks ties with the longer reset', () => {
    const minute = result({ remaining: 0, resetSeconds: 60 });
    const hour = result({ limit: 1000, remaining: 0, resetSeconds: 3600, windowSeconds: 3600 });
    expect(mostRestrictive([minute, hour])).toBe(hour);
    expect(mostRestrictive([hour, minute])).toBe(hour);
  });

  it('is undefined when nothing is limited', () => {
    expect(mostRestrictive([])).toBeUndefined();
  });
});
