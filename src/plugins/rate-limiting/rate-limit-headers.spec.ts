import { policyName, rateLimitHeaders } from './rate-limit-headers';
import type { BucketResult } from './token-bucket';

const bucket = (over: Partial<BucketResult>): BucketResult => ({
  scope: 'tenant',
  limit: 1000,
  rate: 1000,
  remaining: 500,
  resetSeconds: 30,
  windowSeconds: 60,
  ...over,
});

describe('rateLimitHeaders', () => {
  it('describes the most restrictive bucket and lists every bucket in RateLimit-Policy', () => {
    const results = [
      bucket({ scope: 'ip', limit: 100, rate: 100, remaining: 90, resetSeconds: 6 }),
      bucket({ scope: 'tenant', limit: 1000, rate: 1000, remaining: 42, resetSeconds: 17 }),
      bucket({ scope: 'tenant', limit: 10000, rate: 10000, remaining: 9000, resetSeconds: 360, windowSeconds: 3600 }),
      bucket({ scope: 'route', limit: 5000, rate: 5000, remaining: 4000, resetSeconds: 12 }),
    ];
    expect(rateLimitHeaders({ allowed: true, results })).toEqual({
      'x-ratelimit-limit': 1000,
      'x-ratelimit-remaining': 42,
      'x-ratelimit-reset': 17,
      'ratelimit-policy': '"ip";q=100;w=60, "tenant";q=1000;w=60, "tenant-hour";q=10000;w=3600, "route";q=5000;w=60',
      ratelimit: '"tenant";r=42;t=17',
    });
  });

  it('adds Retry-After on a refusal', () => {
    const headers = rateLimitHeaders({ allowed: false, retryAfterSeconds: 2, results: [bucket({ remaining: 0, resetSeconds: 60 })] });
    expect(headers['retry-after']).toBe(2);
    expect(headers['x-ratelimit-remaining']).toBe(0);
  });

  it('sets nothing when no bucket applied (the allow policy without a store)', () => {
    expect(rateLimitHeaders({ allowed: true, results: [] })).toEqual({});
  });

  it('names windows other than a minute by their length', () => {
    expect(policyName({ scope: 'ip', windowSeconds: 10 })).toBe('ip-10s');
  });
});
