import { backoffCeiling, backoffDelay } from './backoff';

describe('backoffDelay', () => {
  const options = { baseMs: 50, capMs: 1_000 };

  it('doubles the window on each attempt up to the cap', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 2_000].map((attempt) => backoffCeiling(attempt, options));

    expect(ceilings).toEqual([50, 100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('draws uniformly across the whole window (full jitter)', () => {
    const draw = (rng: number, attempt: number) => backoffDelay(attempt, { ...options, rng: () => rng });

    expect(draw(0, 3)).toBe(0);
    expect(draw(0.5, 3)).toBe(200);
    expect(draw(0.999, 3)).toBe(399);
    expect(draw(0.5, 40)).toBe(500);
  });

  it('spreads many retries of the same attempt instead of firing them together', () => {
    const delays = new Set(Array.from({ length: 200 }, () => backoffDelay(2, options)));

    expect(delays.size).toBeGreaterThan(100);
    expect(Math.max(...delays)).toBeLessThan(200);
  });

  it('refuses a negative or fractional attempt', () => {
    expect(() => backoffDelay(-1, options)).toThrow(RangeError);
    expect(() => backoffDelay(0.5, options)).toThrow(RangeError);
  });
});
