import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker';

function breakerAt(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = { t: 1_000_000 };
  const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 10_000, now: () => clock.t, ...options });
  return { breaker, clock };
}

function trip(breaker: CircuitBreaker, times = 3): void {
  for (let i = 0; i < times; i++) breaker.onFailure();
}

describe('CircuitBreaker', () => {
  it('opens after failureThreshold consecutive failures, reporting the transition once', () => {
    const { breaker } = breakerAt();

    expect(breaker.onFailure()).toBeUndefined();
    expect(breaker.onFailure()).toBeUndefined();
    expect(breaker.canRequest()).toBe(true);
    expect(breaker.onFailure()).toBe('open');
    expect(breaker.state()).toBe('open');
    expect(breaker.canRequest()).toBe(false);
    expect(breaker.onFailure()).toBeUndefined();
  });

  it('counts only consecutive failures: a success in between starts over', () => {
    const { breaker } = breakerAt();
    trip(breaker, 2);
    breaker.onSuccess();
    trip(breaker, 2);

    expect(breaker.state()).toBe('closed');
  });

  it('turns half-open when the cool-down has passed, by itself', () => {
    const { breaker, clock } = breakerAt();
    trip(breaker);

    clock.t += 9_999;
    expect(breaker.state()).toBe('open');
    clock.t += 1;
    expect(breaker.state()).toBe('half-open');
    expect(breaker.canRequest()).toBe(true);
  });

  it('lets exactly one probe through in half-open', () => {
    const { breaker, clock } = breakerAt();
    trip(breaker);
    clock.t += 10_000;

    expect(breaker.reserveProbe()).toBe(true);
    expect(breaker.canRequest()).toBe(false);
    expect(breaker.reserveProbe()).toBe(false);
  });

  it('closes when the probe succeeds', () => {
    const { breaker, clock } = breakerAt();
    trip(breaker);
    clock.t += 10_000;
    breaker.reserveProbe();

    expect(breaker.onSuccess()).toBe('closed');
    expect(breaker.state()).toBe('closed');
    expect(breaker.canRequest()).toBe(true);
    // The failure count started over: it takes a full threshold to open again.
    trip(breaker, 2);
    expect(breaker.state()).toBe('closed');
  });

  it('re-opens on a failed probe with a doubled cool-down, capped', () => {
    const { breaker, clock } = breakerAt({ maxCooldownMs: 30_000 });
    trip(breaker);
    const cooldowns: number[] = [];
    for (let round = 0; round < 4; round++) {
      let waited = 0;
      while (breaker.state() !== 'half-open') {
        clock.t += 1_000;
        waited += 1_000;
      }
      cooldowns.push(waited);
      breaker.reserveProbe();
      expect(breaker.onFailure()).toBe('open');
    }

    expect(cooldowns).toEqual([10_000, 20_000, 30_000, 30_000]);
  });

  it('goes back to the base cool-down once a probe has closed the circuit', () => {
    const { breaker, clock } = breakerAt();
    trip(breaker);
    clock.t += 10_000;
    breaker.onFailure();
    clock.t += 20_000;
    breaker.onSuccess();
    trip(breaker);

    clock.t += 10_000;
    expect(breaker.state()).toBe('half-open');
  });

  it('frees the probe slot when the probe is released without a verdict', () => {
    const { breaker, clock } = breakerAt();
    trip(breaker);
    clock.t += 10_000;
    breaker.reserveProbe();
    breaker.releaseProbe();

    expect(breaker.state()).toBe('half-open');
    expect(breaker.reserveProbe()).toBe(true);
  });

  it('allows a new probe when the reserved one never reports back', () => {
    const { breaker, clock } = breakerAt({ probeTimeoutMs: 5_000 });
    trip(breaker);
    clock.t += 10_000;
    breaker.reserveProbe();

    clock.t += 4_999;
    expect(breaker.canRequest()).toBe(false);
    clock.t += 1;
    expect(breaker.canRequest()).toBe(true);
    expect(breaker.reserveProbe()).toBe(true);
  });

  it('ignores stragglers while open: they neither extend nor end the cool-down', () => {
    const { breaker, clock } = breakerAt();
    trip(breaker);
    clock.t += 5_000;
    breaker.onSuccess();
    breaker.onFailure();

    expect(breaker.state()).toBe('open');
    clock.t += 5_000;
    expect(breaker.state()).toBe('half-open');
  });

  it('refuses a probe while closed or open', () => {
    const { breaker } = breakerAt();

    expect(breaker.reserveProbe()).toBe(false);
    trip(breaker);
    expect(breaker.reserveProbe()).toBe(false);
  });

  describe('back-pressure', () => {
    it('marks the backend for the given time without forbidding requests', () => {
      const { breaker, clock } = breakerAt();
      breaker.onBackPressure(2_000);

      expect(breaker.underBackPressure()).toBe(true);
      expect(breaker.canRequest()).toBe(true);
      clock.t += 2_000;
      expect(breaker.underBackPressure()).toBe(false);
    });

    it('is not a failure: 429s never open the circuit nor break a failure streak', () => {
      const { breaker } = breakerAt();
      for (let i = 0; i < 10; i++) breaker.onBackPressure();
      expect(breaker.state()).toBe('closed');

      trip(breaker, 2);
      breaker.onBackPressure();
      expect(breaker.onFailure()).toBe('open');
    });

    it('lapses by itself, capped whatever the backend asks for', () => {
      const { breaker, clock } = breakerAt({ maxBackPressureMs: 5_000 });
      breaker.onBackPressure(3_600_000);

      clock.t += 5_000;
      expect(breaker.underBackPressure()).toBe(false);
    });

    it('uses the default period when none (or nonsense) is given, and never shortens a mark', () => {
      const { breaker, clock } = breakerAt({ backPressureMs: 1_500 });
      breaker.onBackPressure(Number.NaN);
      clock.t += 1_499;
      expect(breaker.underBackPressure()).toBe(true);
      clock.t += 1;
      expect(breaker.underBackPressure()).toBe(false);

      breaker.onBackPressure(10_000);
      breaker.onBackPressure(100);
      clock.t += 9_999;
      expect(breaker.underBackPressure()).toBe(true);
    });
  });

  it('reports its state for health endpoints and metrics', () => {
    const { breaker, clock } = breakerAt();
    const start = clock.t;
    trip(breaker);
    breaker.onBackPressure(1_000);

    expect(breaker.snapshot()).toEqual({
      state: 'open',
      consecutiveFailures: 3,
      openedAt: start,
      halfOpenAt: start + 10_000,
      backPressureUntil: start + 1_000,
    });
  });

  it('refuses a threshold below one', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0, cooldownMs: 1_000 })).toThrow(RangeError);
  });
});
