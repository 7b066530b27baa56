import { GatewayException } from '../common/errors/gateway.exception';
import { usagePeriodOf } from '../usage/usage-period';

/** Longest range a usage report, series or export may span, in days (a year, leap years included). */
export const MAX_RANGE_DAYS = 366;

export interface UsageRange {
  /** 'YYYY-MM-DD', inclusive. */
  readonly from: string;
  readonly to: string;
}

const DAY_MS = 86_400_000;

/**
 * A validated range of UTC days; absent ends default to the current month up to today. Refuses
 * with 400 `validation_failed` dates that do not exist (2026-02-30), a `from` after `to`, and
 * ranges longer than MAX_RANGE_DAYS.
 */
export function usageRangeOf(from: string | undefined, to: string | undefined, now: Date = new Date()): UsageRange {
  const period = usagePeriodOf(now);
  const first = from ?? period.monthStart.toISOString().slice(0, 10);
  const last = to ?? period.day;
  const problems: string[] = [];
  if (!isCalendarDay(first)) problems.push('from must be an existing date YYYY-MM-DD');
  if (!isCalendarDay(last)) problems.push('to must be an existing date YYYY-MM-DD');
  if (problems.length === 0) {
    const span = (Date.parse(last) - Date.parse(first)) / DAY_MS;
    if (span < 0) problems.push('from must not be after to');
    else if (span >= MAX_RANGE_DAYS) problems.push(`from and to may be at most ${MAX_RANGE_DAYS} days apart`);
  }
  if (problems.length > 0) throw new GatewayException('validation_failed', undefined, { details: problems });
  return { from: first, to: last };
}

/** Every day of the range, oldest first. */
export function daysOf(range: UsageRange): string[] {
  const days: string[] = [];
  for (let ms = Date.parse(range.from), end = Date.parse(range.to); ms <= end; ms += DAY_MS) days.push(new Date(ms).toISOString().slice(0, 10));
  return days;
}

function isCalendarDay(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}
