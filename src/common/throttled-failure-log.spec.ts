import { ThrottledFailureLog } from './throttled-failure-log';

describe('ThrottledFailureLog', () => {
  it('logs the first failure, then at most one line per interval with the swallowed count', () => {
    let now = 1_000;
    const log = new ThrottledFailureLog(10_000, () => now);
    expect(log.failed()).toBe(1);
    now += 5_000;
    expect(log.failed()).toBeUndefined();
    expect(log.failed()).toBeUndefined();
    now += 5_000;
    expect(log.failed()).toBe(3);
    now += 1;
    expect(log.failed()).toBeUndefined();
  });
});
