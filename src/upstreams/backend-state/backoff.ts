/**
 * Delay before retry number `attempt` (0 for the first retry): "full jitter" from AWS's
 * exponential-backoff study, uniform in [0, min(capMs, baseMs × 2^attempt)). Spreading retries
 * over the whole window keeps many clients that failed together from retrying together, which
 * would hit the surviving backends in lock-step.
 */

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Uniform in [0, 1); injected by specs. */
  rng?: () => number;
}

export function backoffDelay(attempt: number, options: BackoffOptions): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError('attempt must be an integer ≥ 0');
  const ceiling = backoffCeiling(attempt, options);
  return Math.floor((options.rng ?? Math.random)() * ceiling);
}

/** The upper end of the window `backoffDelay` draws from. */
export function backoffCeiling(attempt: number, options: Pick<BackoffOptions, 'baseMs' | 'capMs'>): number {
  // 2 ** attempt overflows to Infinity for huge attempts; min() still yields the cap.
  return Math.max(0, Math.min(options.capMs, options.baseMs * 2 ** attempt));
}
