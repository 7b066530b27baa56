import { RateLimitConfig } from '../config/gateway-config';
import { RateLimitBuckets } from './rate-limit-buckets';

describe('RateLimitBuckets', () => {
  const buckets = new RateLimitBuckets(new RateLimitConfig());

  it('gives the IP its configured per-minute bucket', () => {
    expect(buckets.ip('203.0.113.7')).toEqual([{ key: '{ip:203.0.113.7}:60', scope: 'ip', rate: 100, windowSeconds: 60, burst: undefined }]);
    // One IPv6 subscriber holds a /64: rotating addresses inside it must not buy new buckets.
    expect(buckets.ip('2001:db8:1:2:aaaa::1')[0].key).toBe('{ip:2001:db8:1:2::/64}:60');
    expect(buckets.ip('2001:db8:1:2:ffff:ffff:ffff:ffff')[0].key).toBe(buckets.ip('2001:db8:1:2::9')[0].key);
    expect(buckets.ip('2001:db8:1:3::9')[0].key).not.toBe(buckets.ip('2001:db8:1:2::9')[0].key);
  });

  it('gives a tenant a minute bucket (with its burst) and an hour bucket sharing one hash tag', () => {
    const tenant = buckets.tenant('t1', { perMinute: 30, perHour: 600, burst: 5 });
    expect(tenant).toEqual([
      { key: '{t:t1}:60', scope: 'tenant', rate: 30, windowSeconds: 60, burst: 5 },
      { key: '{t:t1}:3600', scope: 'tenant', rate: 600, windowSeconds: 3600 },
    ]);
  });

  it('adds the named route bucket only when the route has a name', () => {
    expect(buckets.route('proxy')).toEqual([{ key: '{r:proxy}:60', scope: 'route', rate: 5000, windowSeconds: 60, burst: undefined }]);
    expect(buckets.route(undefined)).toEqual([]);
  });
});
