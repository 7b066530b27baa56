import { HealthTracker } from './health-tracker';

function tracker(initiallyHealthy?: boolean) {
  const clock = { t: 5_000 };
  const now = () => clock.t;
  const health = new HealthTracker({ healthyThreshold: 2, unhealthyThreshold: 3, initiallyHealthy, now });
  return { health, clock };
}

describe('HealthTracker', () => {
  it('starts healthy by default so a new backend takes traffic before its first check', () => {
    expect(tracker().health.isHealthy()).toBe(true);
    expect(tracker(false).health.isHealthy()).toBe(false);
  });

  it('goes down after unhealthyThreshold consecutive failed checks, reporting it once', () => {
    const { health } = tracker();
    const transitions = [false, false, false, false, false].map((ok) => health.report(ok, 'ECONNREFUSED'));

    expect(transitions).toEqual([undefined, undefined, 'down', undefined, undefined]);
    expect(health.isHealthy()).toBe(false);
  });

  it('ignores failures that are not consecutive', () => {
    const { health } = tracker();
    const transitions = [false, false, true, false, false, true].map((ok) => health.report(ok));

    expect(transitions.every((t) => t === undefined)).toBe(true);
    expect(health.isHealthy()).toBe(true);
  });

  it('comes back up after healthyThreshold consecutive successes, reporting it once', () => {
    const { health } = tracker(false);
    const transitions = [true, false, true, true, true].map((ok) => health.report(ok));

    expect(transitions).toEqual([undefined, undefined, undefined, 'up', undefined]);
    expect(health.isHealthy()).toBe(true);
  });

  it('records the last check for the health endpoint', () => {
    const { health, clock } = tracker();
    expect(health.snapshot().lastCheckAt).toBeUndefined();

    health.report(false, 'timeout after 5000 ms');
    clock.t = 9_000;
    health.report(false, 'HTTP 503');
    expect(health.snapshot()).toEqual({
      healthy: true,
      consecutiveSuccesses: 0,
      consecutiveFailures: 2,
      lastCheckAt: 9_000,
      lastCheckOk: false,
      lastError: 'HTTP 503',
    });

    health.report(true);
    expect(health.snapshot()).toEqual({
      healthy: true,
      consecutiveSuccesses: 1,
      consecutiveFailures: 0,
      lastCheckAt: 9_000,
      lastCheckOk: true,
    });
  });

  it('refuses thresholds below one', () => {
    expect(() => new HealthTracker({ healthyThreshold: 0, unhealthyThreshold: 3 })).toThrow(RangeError);
    expect(() => new HealthTracker({ healthyThreshold: 2, unhealthyThreshold: 1.5 })).toThrow(RangeError);
  });
});
