/**
 * Calendar arithmetic of usage (docs/rate-limits-and-quotas.md): months and days are UTC. Pure, no I/O.
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

/** The last period computed, reused while `now` stays within its day (every request asks). */
let lastPeriod: UsagePeriod | undefined;
let lastDayStartMs = 0;

export function usagePeriodOf(now: Date): UsagePeriod {
  const ms = now.getTime();
  if (lastPeriod !== undefined && ms >= lastDayStartMs && ms < lastPeriod.dayEnd.getTime()) return lastPeriod;
  const period = computePeriod(now);
  lastPeriod = period;
  lastDayStartMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return period;
}

function computePeriod(now: Date): UsagePeriod {
  const year = now.getUTCFullYear();
  const monthIndex = now.getUTCMonth();
  const date = now.getUTCDate();
  const monthStart = new Date(Date.UTC(year, monthIndex, 1));
  const monthEnd = new Date(Date.UTC(year, monthIndex + 1, 1));
  const dayEnd = new Date(Date.UTC(year, monthIndex, date + 1));
  const month = monthStart.toISOString().slice(0, 7);
  // Frozen: one object is shared by every caller of the same day.
  return Object.freeze({ month, day: `${month}-${pad2(date)}`, monthStart, monthEnd, dayEnd });
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
