import { dayOfMonth, secondsUntil, usagePeriodOf } from './usage-period';

describe('usagePeriodOf', () => {
  it('uses UTC calendar months and days', () => {
    const period = usagePeriodOf(new Date('2026-11-30T23:59:59.500Z'));
    expect(period).toEqual({
      month: '2026-11',
      day: '2026-11-30',
      monthStart: new Date('2026-11-01T00:00:00Z'),
      monthEnd: new Date('2026-12-01T00:00:00Z'),
      dayEnd: new Date('2026-12-01T00:00:00Z'),
    });
    expect(dayOfMonth(period.day)).toBe('30');
  });

  it('rolls December into January of the next year', () => {
    const period = usagePeriodOf(new Date('2026-12-31T12:00:00Z'));
    expect(period.monthEnd).toEqual(new Date('2027-01-01T00:00:00Z'));
    expect(period.day).toBe('2026-12-31');
  });

  it('counts seconds up to the reset, rounding up', () => {
    const now = new Date('2026-11-30T23:59:58.200Z');
    expect(secondsUntil(usagePeriodOf(now).monthEnd, now)).toBe(2);
    expect(secondsUntil(now, now)).toBe(0);
  });
});
