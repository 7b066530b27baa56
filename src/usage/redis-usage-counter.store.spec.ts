import { UsageKeys, monthViewFields, parseMonthView } from './redis-usage-counter.store';
import { usagePeriodOf } from './usage-period';

describe('usage keys and the month view read', () => {
  const keys = new UsageKeys('igw:');

  it('puts every key of a tenant under its rate-limit hash tag', () => {
    expect(keys.month('t1', '2026-11')).toBe('igw:u:{t:t1}:m:2026-11');
    expect(keys.pending('t1')).toBe('igw:u:{t:t1}:p');
    expect(keys.inflight('t1')).toBe('igw:u:{t:t1}:f');
    expect(keys.gen('t1')).toBe('igw:u:{t:t1}:g');
    expect(keys.tenantOf('igw:u:{t:t1}:p')).toBe('t1');
  });

  it('escapes glob characters of the prefix in the sweep pattern', () => {
    expect(new UsageKeys('a*b[1]:').unflushedPattern()).toBe('a\\*b\\[1\\]:u:{t:*}:[pf]');
  });

  it("reads today's day field and treats a view without seed token as not seeded", () => {
    const period = usagePeriodOf(new Date('2026-11-05T08:00:00Z'));
    expect(monthViewFields(period)).toEqual(['s', 'r', 'bi', 'bo', 'r:05']);
    expect(parseMonthView([null, '3', null, null, null])).toBeUndefined();
    expect(parseMonthView(['tok', '3', '10', '20', null])).toEqual({ token: 'tok', requests: 3, bytesIn: 10, bytesOut: 20, dayRequests: 0 });
  });
});
