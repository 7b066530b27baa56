import type { AuthContext } from '../common/http/request-context';
import { usagePeriodOf } from '../usage/usage-period';
import { AdmissionKeys, CompiledRoute, type PlanContext, ipBucketId } from './admission-plan';

const context: PlanContext = { keyPrefix: 'igw:', cluster: false, enabled: true, ip: { perMinute: 100 } };
const auth = (tenantId: string): AuthContext => ({
  tenantId,
  tenantName: tenantId,
  scopes: [],
  via: 'api-key',
  limits: { perMinute: 30, perHour: 600, burst: 5, monthlyRequests: 1000, dailyRequests: 50, monthlyBandwidthBytes: 10_000, storageBytes: 1 },
  allowedSources: [],
  allowUnsignedUrls: false,
});
const proxy = (over: Partial<PlanContext> = {}) =>
  new CompiledRoute({ routeName: 'proxy', capacity: { perMinute: 20_000 }, perCaller: { perMinute: 10 }, policy: 'exact', countsTowardQuota: true }, { ...context, ...over });

describe('ipBucketId', () => {
  it('is the address for IPv4 and its /64 for IPv6', () => {
    expect(ipBucketId('203.0.113.7')).toBe('203.0.113.7');
    // One IPv6 subscriber holds a /64: rotating addresses inside it must not buy new buckets.
    expect(ipBucketId('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(ipBucketId('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(ipBucketId('2001:db8:1:2::9'));
    expect(ipBucketId('2001:db8:1:3::9')).not.toBe(ipBucketId('2001:db8:1:2::9'));
  });
});

describe('CompiledRoute', () => {
  it("keeps the tenant's buckets and month view in one hash, the capacity in the route's", () => {
    const plan = proxy().planFor({ clientIp: '192.0.2.1', auth: auth('t1') });
    expect(plan.buckets.map((b) => [b.hash, b.levelField, b.scope, b.rate, b.burst, b.shown])).toEqual([
      ['igw:a:{t:t1}', 'b:60', 'tenant', 30, 5, true],
      ['igw:a:{t:t1}', 'b:3600', 'tenant', 600, undefined, true],
      ['igw:a:{t:t1}:r:proxy', 'b:60', 'route', 10, undefined, true],
      ['igw:a:{r:proxy}', 'b:60', 'capacity', 20_000, undefined, false],
    ]);
    // The caller's buckets in RateLimit-Policy; the shared capacity is not the caller's to see.
    expect(plan.policyHeader).toBe('"tenant";q=30;w=60, "tenant-hour";q=600;w=3600, "route";q=10;w=60');
    expect(plan.groups).toHaveLength(1);
    expect(plan.groups[0].keys).toEqual(['igw:a:{t:t1}', 'igw:a:{t:t1}:r:proxy', 'igw:a:{r:proxy}']);
  });

  it('builds the script arguments once a day, with the month view fields and the quotas', () => {
    const plan = proxy().planFor({ clientIp: '192.0.2.1', auth: auth('t1') });
    const period = usagePeriodOf(new Date('2026-11-22T10:00:00Z'));
    const args = plan.groups[0].argsFor(period);
    const ttl = period.monthEnd.getTime() + 3 * 86_400_000 - Date.parse('2026-11-22T00:00:00Z');
    // The tenant's hash: its two buckets, the month view's fields, the buckets' numbers.
    expect(args.slice(0, 13)).toEqual(['1', ttl, 2, 'b:60', 'b:3600', 's:2026-11', 'r:2026-11', 'r:2026-11-22', 'by:2026-11', 30, 60_000, 300_000, 600]);
    // The quotas come last.
    expect(args.slice(-3)).toEqual([1000, 50, 10_000]);
    expect(plan.groups[0].argsFor(period)).toBe(args);
    expect(plan.groups[0].argsFor(period, false)).not.toContain('s:2026-11');
  });

  it('caches the plan per AuthContext, so a change of limits (a new context) gets a new plan', () => {
    const route = proxy();
    const caller = auth('t1');
    expect(route.planFor({ clientIp: '192.0.2.1', auth: caller })).toBe(route.planFor({ clientIp: '192.0.2.2', auth: caller }));
    expect(route.planFor({ clientIp: '192.0.2.1', auth: auth('t1') })).not.toBe(route.planFor({ clientIp: '192.0.2.1', auth: caller }));
  });

  it('adds the per-IP cap of authenticated callers only when configured', () => {
    const capped = proxy({ ipAuthenticated: { perMinute: 600 } }).planFor({ clientIp: '192.0.2.1', auth: auth('t1') });
    expect(capped.buckets[0]).toMatchObject({ hash: 'igw:a:{ip:192.0.2.1}:a', scope: 'ip', rate: 600 });
  });

  it('gives an open route the pre-authentication bucket of the address and no quota', () => {
    const plan = proxy().planFor({ clientIp: '192.0.2.1' });
    expect(plan.quota).toBeUndefined();
    expect(plan.buckets.map((b) => [b.hash, b.scope])).toEqual([
      ['igw:a:{ip:192.0.2.1}:p', 'ip'],
      ['igw:a:{ip:192.0.2.1}:r:proxy', 'route'],
      ['igw:a:{r:proxy}', 'capacity'],
    ]);
  });

  it('splits the script per hash slot on a cluster, the tenant slot carrying the quota', () => {
    const plan = proxy({ cluster: true, ipAuthenticated: { perMinute: 600 } }).planFor({ clientIp: '192.0.2.1', auth: auth('t1') });
    expect(plan.groups.map((g) => [g.keys, g.quota !== undefined])).toEqual([
      [['igw:a:{t:t1}', 'igw:a:{t:t1}:r:proxy'], true],
      [['igw:a:{ip:192.0.2.1}:a'], false],
      [['igw:a:{r:proxy}'], false],
    ]);
  });

  it('refuses route names a key could not hold', () => {
    expect(() => new CompiledRoute({ routeName: 'a}b', policy: 'exact', countsTowardQuota: false }, context)).toThrow(RangeError);
  });

  it('names the throttler and pre-authentication hashes by their own tags', () => {
    const keys = new AdmissionKeys('igw:');
    expect(keys.throttler('default', 'k')).toBe('igw:a:{th:default:k}');
    expect(keys.preAuthBuckets('2001:db8::1', { perMinute: 5 })[0].hash).toBe('igw:a:{ip:2001:db8:0:0::/64}:p');
  });
});
