import { daysOf, usageRangeOf } from './usage-range';

describe('usageRangeOf', () => {
  const now = new Date('2026-11-22T10:00:00Z');

  it('defaults to the current month up to today', () => {
    expect(usageRangeOf(undefined, undefined, now)).toEqual({ from: '2026-11-01', to: '2026-11-22' });
  });

  it('accepts up to 366 days, this side of a leap year', () => {
    expect(usageRangeOf('2024-01-01', '2024-12-31', now)).toEqual({ from: '2024-01-01', to: '2024-12-31' });
    expect(() => usageRangeOf('2025-01-01', '2026-01-02', now)).toThrow(expect.objectContaining({ code: 'validation_failed' }));
  });

  it('refuses days that do not exist and a from after the to', () => {
    for (const [from, to] of [
      ['2026-02-30', '2026-03-01'],
      ['2026-13-01', '2026-12-01'],
      ['2026-11-02', '2026-11-01'],
      ['yesterday', '2026-11-01'],
    ]) {
      expect(() => usageRangeOf(from, to, now)).toThrow(expect.objectContaining({ code: 'validation_failed' }));
    }
  });

  it('lists every day of a range across a month end', () => {
    expect(daysOf({ from: '2026-02-27', to: '2026-03-01' })).toEqual(['2026-02-27', '2026-02-28', '2026-03-01']);
  });
});
