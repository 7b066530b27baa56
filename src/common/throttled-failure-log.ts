/**
 * Decides when a store failure is worth a log line: the first one, then at most one per
 * `intervalMs`, with the number of failures swallowed meanwhile. A dead Redis fails every request;
 * one line per request would bury everything else in the log.
 */
export class ThrottledFailureLog {
  private lastLoggedAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly intervalMs = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Returns the count of failures since the last line (≥ 1) when a line is due, else undefined. */
  failed(): number | undefined {
    const now = this.clock();
    this.suppressed++;
    if (now - this.lastLoggedAt < this.intervalMs) return undefined;
    this.lastLoggedAt = now;
    const count = this.suppressed;
    this.suppressed = 0;
    return count;
  }
}
