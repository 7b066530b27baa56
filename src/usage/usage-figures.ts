/** A tenant's usage of the month as a quota decision reads it. */
export interface UsageFigure {
  readonly requests: number;
  /** Requests of the period's day. */
  readonly dayRequests: number;
  /** Request + response bytes. */
  readonly bytes: number;
  /** Seed token of the month view these figures come from ('' when none was seen). */
  readonly token: string;
  /** False when no shared view (or, in single-instance mode, no seed) was seen this month. */
  readonly observed: boolean;
}

interface Entry {
  month: string;
  day: string;
  token: string;
  observed: boolean;
  requests: number;
  dayRequests: number;
  bytes: number;
  unsyncedRequests: number;
  unsyncedDayRequests: number;
  unsyncedBytes: number;
}

/**
 * What this instance knows of each tenant's month: the figures of the shared month view as the
 * last script reported them, plus what it counted itself that the shared view does not hold yet
 * ("unsynced": decided in process while Redis failed, counted by a `local-sync` route, bytes
 * waiting for their batch). Quota decisions made without Redis read these; in single-instance
 * mode (no Redis) they are the month view itself: the seed from PostgreSQL plus every count since.
 * One entry per tenant, for the month last seen; memory grows with the tenants this instance served.
 */
export class UsageFigures {
  private readonly entries = new Map<string, Entry>();

  /** The shared view's figures, as a script just reported them (this request included if counted). */
  observe(tenantId: string, day: string, token: string, requests: number, dayRequests: number, bytes: number): void {
    const entry = this.entryOf(tenantId, day);
    entry.token = token;
    entry.observed = true;
    entry.requests = requests;
    if (entry.day === day) entry.dayRequests = dayRequests;
    entry.bytes = bytes;
  }

  /** Shared figures plus this instance's unsynced counts; undefined when nothing is known of the month. */
  current(tenantId: string, day: string): UsageFigure | undefined {
    const entry = this.entries.get(tenantId);
    if (!entry || !day.startsWith(entry.month)) return undefined;
    const today = entry.day === day;
    return {
      requests: entry.requests + entry.unsyncedRequests,
      dayRequests: today ? entry.dayRequests + entry.unsyncedDayRequests : 0,
      bytes: entry.bytes + entry.unsyncedBytes,
      token: entry.token,
      observed: entry.observed,
    };
  }

  /** Counts (or, negative, uncounts) what the shared view does not hold. */
  addUnsynced(tenantId: string, day: string, requests: number, bytes: number): void {
    const entry = this.entryOf(tenantId, day);
    entry.unsyncedRequests += requests;
    if (entry.day === day) entry.unsyncedDayRequests += requests;
    entry.unsyncedBytes += bytes;
  }

  /** Unsynced counts of `day` that the shared view now holds (a batch applied them, or a replay did). */
  synced(tenantId: string, day: string, requests: number, bytes: number): void {
    const entry = this.entries.get(tenantId);
    if (!entry || !day.startsWith(entry.month)) return;
    entry.unsyncedRequests = Math.max(0, entry.unsyncedRequests - requests);
    if (entry.day === day) entry.unsyncedDayRequests = Math.max(0, entry.unsyncedDayRequests - requests);
    entry.unsyncedBytes = Math.max(0, entry.unsyncedBytes - bytes);
  }

  /** This instance's counts of `day` that the shared view does not hold. */
  unsynced(tenantId: string, day: string): { requests: number; dayRequests: number; bytes: number } {
    const entry = this.entries.get(tenantId);
    if (!entry || !day.startsWith(entry.month)) return { requests: 0, dayRequests: 0, bytes: 0 };
    return { requests: entry.unsyncedRequests, dayRequests: entry.day === day ? entry.unsyncedDayRequests : 0, bytes: entry.unsyncedBytes };
  }

  forget(tenantId: string): void {
    this.entries.delete(tenantId);
  }

  private entryOf(tenantId: string, day: string): Entry {
    const month = day.slice(0, 7);
    let entry = this.entries.get(tenantId);
    if (!entry || entry.month !== month) {
      entry = {
        month,
        day,
        token: '',
        observed: false,
        requests: 0,
        dayRequests: 0,
        bytes: 0,
        unsyncedRequests: 0,
        unsyncedDayRequests: 0,
        unsyncedBytes: 0,
      };
      this.entries.set(tenantId, entry);
    } else if (entry.day < day) {
      // A new day: the month's counts go on, the day's start again. (A late count of an earlier
      // day leaves today's figures alone.)
      entry.day = day;
      entry.dayRequests = 0;
      entry.unsyncedDayRequests = 0;
    }
    return entry;
  }
}
