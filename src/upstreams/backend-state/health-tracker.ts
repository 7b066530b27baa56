/**
 * Active health of one backend (docs/proxy-and-backends.md): the scheduled prober reports each check, and the
 * thresholds keep one lost check from ejecting a backend or one lucky check from readmitting it.
 * `report` returns the transition, if any, so the caller logs, counts and persists
 * `backends.is_healthy` exactly once per change rather than on every check.
 */

export type HealthTransition = 'up' | 'down';

export interface HealthTrackerOptions {
  /** Consecutive successful checks that make an unhealthy backend healthy (≥ 1). */
  healthyThreshold: number;
  /** Consecutive failed checks that make a healthy backend unhealthy (≥ 1). */
  unhealthyThreshold: number;
  /**
   * Default true: a new backend takes traffic before its first check (a check interval of 30 s
   * must not delay a fresh deployment); the circuit breaker covers it if it is in fact broken.
   * False suits a backend known to be down, e.g. from `backends.is_healthy` at start-up.
   */
  initiallyHealthy?: boolean;
  now?: () => number;
}

export interface HealthSnapshot {
  healthy: boolean;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  /** When the last check finished (epoch ms of the injected clock); absent before the first. */
  lastCheckAt?: number;
  lastCheckOk?: boolean;
  /** Why the last failed check failed, as the prober described it. */
  lastError?: string;
}

export class HealthTracker {
  private readonly healthyThreshold: number;
  private readonly unhealthyThreshold: number;
  private readonly now: () => number;
  private healthy: boolean;
  private consecutiveSuccesses = 0;
  private consecutiveFailures = 0;
  private lastCheckAt: number | undefined;
  private lastCheckOk: boolean | undefined;
  private lastError: string | undefined;

  constructor(options: HealthTrackerOptions) {
    for (const key of ['healthyThreshold', 'unhealthyThreshold'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 1) throw new RangeError(`${key} must be an integer ≥ 1`);
    }
    this.healthyThreshold = options.healthyThreshold;
    this.unhealthyThreshold = options.unhealthyThreshold;
    this.healthy = options.initiallyHealthy ?? true;
    this.now = options.now ?? Date.now;
  }

  isHealthy(): boolean {
    return this.healthy;
  }

  /** Records one check; returns 'up' or 'down' only on the check that changes the state. */
  report(ok: boolean, error?: string): HealthTransition | undefined {
    this.lastCheckAt = this.now();
    this.lastCheckOk = ok;
    if (ok) {
      this.consecutiveSuccesses++;
      this.consecutiveFailures = 0;
      this.lastError = undefined;
      if (!this.healthy && this.consecutiveSuccesses >= this.healthyThreshold) {
        this.healthy = true;
        return 'up';
      }
      return undefined;
    }
    this.consecutiveFailures++;
    this.consecutiveSuccesses = 0;
    this.lastError = error;
    if (this.healthy && this.consecutiveFailures >= this.unhealthyThreshold) {
      this.healthy = false;
      return 'down';
    }
    return undefined;
  }

  snapshot(): HealthSnapshot {
    const snapshot: HealthSnapshot = {
      healthy: this.healthy,
      consecutiveSuccesses: this.consecutiveSuccesses,
      consecutiveFailures: this.consecutiveFailures,
    };
    if (this.lastCheckAt !== undefined) snapshot.lastCheckAt = this.lastCheckAt;
    if (this.lastCheckOk !== undefined) snapshot.lastCheckOk = this.lastCheckOk;
    if (this.lastError !== undefined) snapshot.lastError = this.lastError;
    return snapshot;
  }
}
