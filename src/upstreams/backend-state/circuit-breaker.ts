/**
 * Passive health of one backend (docs/proxy-and-backends.md): consecutive proxy failures open the circuit, a
 * cool-down later one probe request decides, and a 429 shifts load away without counting as a
 * failure. Pure: time comes from the injected clock and states are derived from it when asked,
 * so there are no timers to clean up and an open circuit always lapses by itself.
 *
 *   closed --failureThreshold consecutive failures--> open
 *   open --cooldown elapsed--> half-open (derived, not stored)
 *   half-open --probe succeeds--> closed (the next trip starts again from the base cool-down)
 *   half-open --probe fails--> open again, with the cool-down doubled up to maxCooldownMs, so a
 *   backend that stays broken costs one probe per ever longer period instead of one every
 *   cooldownMs, while a cap keeps its return prompt once it is fixed.
 *
 * The caller classifies outcomes (src/proxy/upstream-failure.ts): transport failures (refused or
 * reset connections, malformed replies) and timeouts are failures; a 429 is back-pressure; any
 * other HTTP answer, 5xx included, is a success: the backend works, and its 5xx is about the
 * request (a tenant's broken source), which must not take the backend away from every tenant.
 */

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open a closed circuit (≥ 1). */
  failureThreshold: number;
  /** First open period. */
  cooldownMs: number;
  /** Longest open period after repeated failed probes. Default: 8 × cooldownMs. */
  maxCooldownMs?: number;
  /**
   * How long a reserved probe may stay unanswered before another request may probe. A probe whose
   * outcome is never reported (process bug, lost promise) must not keep the backend out forever.
   * Default 30 s.
   */
  probeTimeoutMs?: number;
  /** Back-pressure period when a 429 names none. Default 1 s. */
  backPressureMs?: number;
  /** Longest back-pressure period, whatever the backend asks for. Default 30 s. */
  maxBackPressureMs?: number;
  now?: () => number;
}

export interface CircuitSnapshot {
  state: CircuitState;
  consecutiveFailures: number;
  /** When the current open period began (epoch ms of the injected clock). */
  openedAt?: number;
  /** When an open circuit turns half-open. */
  halfOpenAt?: number;
  /** Until when the backend is under back-pressure. */
  backPressureUntil?: number;
}

export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly baseCooldownMs: number;
  private readonly maxCooldownMs: number;
  private readonly probeTimeoutMs: number;
  private readonly defaultBackPressureMs: number;
  private readonly maxBackPressureMs: number;
  private readonly now: () => number;

  private open = false;
  private openedAt = 0;
  private cooldownMs: number;
  private consecutiveFailures = 0;
  private probeReservedAt: number | undefined;
  private backPressureUntil = 0;

  constructor(options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.failureThreshold) || options.failureThreshold < 1) {
      throw new RangeError('failureThreshold must be an integer ≥ 1');
    }
    if (!(options.cooldownMs >= 0)) throw new RangeError('cooldownMs must be ≥ 0');
    this.failureThreshold = options.failureThreshold;
    this.baseCooldownMs = options.cooldownMs;
    this.maxCooldownMs = Math.max(options.cooldownMs, options.maxCooldownMs ?? options.cooldownMs * 8);
    this.probeTimeoutMs = options.probeTimeoutMs ?? 30_000;
    this.defaultBackPressureMs = options.backPressureMs ?? 1_000;
    this.maxBackPressureMs = options.maxBackPressureMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.cooldownMs = this.baseCooldownMs;
  }

  state(): CircuitState {
    if (!this.open) return 'closed';
    return this.now() >= this.openedAt + this.cooldownMs ? 'half-open' : 'open';
  }

  /** Whether a request may go to this backend now. Back-pressure does not forbid it. */
  canRequest(): boolean {
    switch (this.state()) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open':
        return !this.probeOutstanding();
    }
  }

  /**
   * Claims the single half-open probe. True only in half-open with no probe outstanding; the
   * request that got true is the probe, every other request sees the backend as unavailable
   * until its outcome is reported (or the probe times out).
   */
  reserveProbe(): boolean {
    if (this.state() !== 'half-open' || this.probeOutstanding()) return false;
    this.probeReservedAt = this.now();
    return true;
  }

  /** Gives the probe slot back without a verdict (the client aborted, the backend answered 429). */
  releaseProbe(): void {
    this.probeReservedAt = undefined;
  }

  /** The backend answered. Returns 'closed' when this closed a half-open circuit. */
  onSuccess(): 'closed' | undefined {
    switch (this.state()) {
      case 'closed':
        this.consecutiveFailures = 0;
        return undefined;
      case 'half-open':
        this.open = false;
        this.consecutiveFailures = 0;
        this.probeReservedAt = undefined;
        return 'closed';
      case 'open':
        // A request sent before the circuit opened; the cool-down, not a straggler, decides.
        return undefined;
    }
  }

  /** Transport failure or timeout. Returns 'open' when this opened (or re-opened) the circuit. */
  onFailure(): 'open' | undefined {
    switch (this.state()) {
      case 'closed':
        this.consecutiveFailures++;
        if (this.consecutiveFailures < this.failureThreshold) return undefined;
        this.trip(this.baseCooldownMs);
        return 'open';
      case 'half-open':
        this.consecutiveFailures++;
        this.trip(Math.min(this.maxCooldownMs, this.cooldownMs * 2));
        return 'open';
      case 'open':
        // Stragglers from before the trip carry no news and must not extend the cool-down.
        return undefined;
    }
  }

  /**
   * imgproxy answered 429 (its queue is full). Neither a failure nor proof of health, so the
   * failure count is untouched (a probe that got a 429 should `releaseProbe()`). The backend stays
   * usable; `underBackPressure()` tells the pool to prefer others until the mark lapses, which it
   * always does: the period is capped whatever the backend asked for.
   */
  onBackPressure(ms: number = this.defaultBackPressureMs): void {
    const asked = Number.isFinite(ms) && ms > 0 ? ms : this.defaultBackPressureMs;
    this.backPressureUntil = Math.max(this.backPressureUntil, this.now() + Math.min(this.maxBackPressureMs, asked));
  }

  underBackPressure(): boolean {
    return this.now() < this.backPressureUntil;
  }

  /** When the current open period began; undefined while closed. */
  openedSince(): number | undefined {
    return this.open ? this.openedAt : undefined;
  }

  snapshot(): CircuitSnapshot {
    const snapshot: CircuitSnapshot = { state: this.state(), consecutiveFailures: this.consecutiveFailures };
    if (this.open) {
      snapshot.openedAt = this.openedAt;
      snapshot.halfOpenAt = this.openedAt + this.cooldownMs;
    }
    if (this.underBackPressure()) snapshot.backPressureUntil = this.backPressureUntil;
    return snapshot;
  }

  private trip(cooldownMs: number): void {
    this.open = true;
    this.openedAt = this.now();
    this.cooldownMs = cooldownMs;
    this.probeReservedAt = undefined;
  }

  private probeOutstanding(): boolean {
    return this.probeReservedAt !== undefined && this.now() < this.probeReservedAt + this.probeTimeoutMs;
  }
}
