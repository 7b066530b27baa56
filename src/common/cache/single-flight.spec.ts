import { SingleFlight } from './single-flight';

describe('SingleFlight', () => {
  it('runs the work once for concurrent callers of one key', async () => {
    const flight = new SingleFlight<string, number>();
    let calls = 0;
    let release!: (v: number) => void;
    const work = () => {
      calls++;
      return new Promise<number>((resolve) => (release = resolve));
    };
    const results = Promise.all([flight.run('k', work), flight.run('k', work), flight.run('k', work)]);
    expect(flight.pending).toBe(1);
    release(7);
    expect(await results).toEqual([7, 7, 7]);
    expect(calls).toBe(1);
    expect(flight.pending).toBe(0);
  });

  it('runs separate work for separate keys and again after completion', async () => {
    const flight = new SingleFlight<string, string>();
    let calls = 0;
    const work = (value: string) => async () => {
      calls++;
      return value;
    };
    expect(await Promise.all([flight.run('a', work('A')), flight.run('b', work('B'))])).toEqual(['A', 'B']);
    expect(await flight.run('a', work('A2'))).toBe('A2');
    expect(calls).toBe(3);
  });

  it('shares a failure and then lets the next caller retry', async () => {
    const flight = new SingleFlight<string, number>();
    const failing = () => Promise.reject(new Error('db down'));
    await expect(Promise.all([flight.run('k', failing), flight.run('k', failing)])).rejects.toThrow('db down');
    expect(await flight.run('k', async () => 1)).toBe(1);
  });

  it('forget() makes the next caller start fresh while the old promise still settles', async () => {
    const flight = new SingleFlight<string, number>();
    let release!: (v: number) => void;
    const first = flight.run('k', () => new Promise<number>((resolve) => (release = resolve)));
    flight.forget('k');
    const second = flight.run('k', async () => 2);
    release(1);
    expect(await first).toBe(1);
    expect(await second).toBe(2);
    expect(flight.pending).toBe(0);
  });
});
