/**
 * Calendar arithmetic of usage (SPEC §6): months and days are UTC. Pure, no I/O.
 * Day = 'YYYY-MM-DD' (the `usage_counters.period` value), month = 'YYYY-MM'.
 */
export interface UsagePeriod {
  /** 'YYYY-MM' */
  readonly month: string;
  /** 'YYYY-MM-DD' */
  readonly day: string;
  /** First instant of the month. */
  readonly monthStart: Date;
  /** First instant of the next month (exclusive end). */
  readonly monthEnd: Date;
  /** First instant of the next day. */
  readonly dayEnd: Date;
}

export function usagePeriodOf(now: Date): UsagePeriod {
  const year = now.getUTCFullYear();
  const monthIndex = now.getUTCMonth();
  const date = now.getUTCDate();
  const monthStart = new Date(Date.UTC(year, monthIndex, 1));
  const monthEnd = new Date(Date.UTC(year, monthIndex + 1, 1));
  const dayEnd = new Date(Date.UTC(year, monthIndex, date + 1));
  const month = monthStart.toISOString().slice(0, 7);
  return { month, day: `${month}-${pad2(date)}`, monthStart, monthEnd, dayEnd };
}

/** Whole seconds from `now` to `until`, rounded up (a header never says 0 while time remains). */
export function secondsUntil(until: Date, now: Date): number {
  return Math.max(0, Math.ceil((until.getTime() - now.getTime()) / 1000));
}

/** 'YYYY-MM-DD' → its day of month as two digits, the suffix of the month hash's day fields. */
export function dayOfMonth(day: string): string {
  return day.slice(8, 10);
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
