import { WeightedRandom } from './random';

const a = { id: 'a', weight: 70 };
const b = { id: 'b', weight: 30 };

describe('WeightedRandom', () => {
  it('maps the draw onto slices proportional to weight', () => {
    const draws = [0, 0.69, 0.7, 0.999999];
    const balancer = new WeightedRandom(() => draws.shift() ?? 0);

    const picks = Array.from({ length: 4 }, () => balancer.pick([a, b])?.id);

    expect(picks).toEqual(['a', 'a', 'b', 'b']);
  });

  it('gives about 70/30 over many draws', () => {
    const balancer = new WeightedRandom(seededRng(42));
    let picksOfA = 0;
    for (let i = 0; i < 10_000; i++) if (balancer.pick([a, b])?.id === 'a') picksOfA++;

    expect(picksOfA).toBeGreaterThan(6_800);
    expect(picksOfA).toBeLessThan(7_200);
  });

  it('draws only among eligible backends', () => {
    const draws = [0, 0.5, 0.99];
    const balancer = new WeightedRandom(() => draws.shift() ?? 0);
    const candidates = [a, { id: 'drained', weight: 0 }, b];

    const picks = Array.from({ length: 3 }, () => balancer.pick(candidates, { exclude: new Set(['a']) })?.id);

    expect(picks).toEqual(['b', 'b', 'b']);
  });

  it('keeps a draw that rounding pushed past the end on the last backend', () => {
    const balancer = new WeightedRandom(() => 1);

    expect(balancer.pick([a, b])?.id).toBe('b');
  });
});

function seededRng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
