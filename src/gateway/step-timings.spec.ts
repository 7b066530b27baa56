import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import { SECTION, SectionTimings, STEP_TIMINGS_ENV, stepTimingsEnabled, timeRequestEntry } from './step-timings';

describe('step timings', () => {
  it('are off unless the benchmark switch is set', () => {
    expect(stepTimingsEnabled({})).toBe(false);
    expect(stepTimingsEnabled({ [STEP_TIMINGS_ENV]: '0' })).toBe(false);
    expect(stepTimingsEnabled({ [STEP_TIMINGS_ENV]: '1' })).toBe(true);
  });

  it('add up nanoseconds and calls per section, one index per name', () => {
    const timings = new SectionTimings();
    const a = timings.section('a');
    expect(timings.section('a')).toBe(a);
    timings.add(a, 1_000);
    timings.add(a, 500);
    timings.add(timings.section('b'), 200);
    expect(timings.snapshot()).toEqual({ a: { nanos: 1_500, calls: 2 }, b: { nanos: 200, calls: 1 } });
    expect(timings.total).toBe(1_700);
  });

  it('book the request entry without what the chain steps and nested sections accounted meanwhile', () => {
    // A clock the listener moves, so the arithmetic is checked without measuring real time.
    let now = 1_000_000n;
    const clock = jest.spyOn(process.hrtime, 'bigint').mockImplementation(() => now);
    try {
      const server = new EventEmitter() as unknown as Server;
      const timings = new SectionTimings();
      const nested = timings.section(SECTION.context);
      let chain = 0;
      server.on('request', () => {
        now += 300_000n; // routing and hooks
        const started = now;
        now += 20_000n; // the first hook
        timings.lap(nested, started);
        now += 50_000n; // chain steps, accounted by the chain itself
        chain += 50_000;
      });
      timeRequestEntry(server, timings, () => chain);
      server.emit('request', {}, {});
      expect(timings.snapshot()).toEqual({ [SECTION.context]: { nanos: 20_000, calls: 1 }, [SECTION.entry]: { nanos: 300_000, calls: 1 } });
    } finally {
      clock.mockRestore();
    }
  });
});
