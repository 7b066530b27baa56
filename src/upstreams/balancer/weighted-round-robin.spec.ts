import { WeightedRoundRobin } from './weighted-round-robin';

interface Backend {
  id: string;
  weight: number;
}

const backend = (id: string, weight: number): Backend => ({ id, weight });

function picks(balancer: WeightedRoundRobin<Backend>, candidates: Backend[], count: number): string[] {
  return Array.from({ length: count }, () => balancer.pick(candidates)?.id ?? '-');
}

function longestRun(sequence: string[], id: string): number {
  let longest = 0;
  let run = 0;
  for (const picked of sequence) {
    run = picked === id ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

/** mulberry32: a tiny deterministic PRNG, so the spec draws the same sequence every run. */
function seededRng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const count = (sequence: string[], id: string) => sequence.filter((picked) => picked === id).length;

describe('WeightedRoundRobin', () => {
  it('gives 70/30 weights exactly 70/30 per 100 picks, never more than 3 in a row', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const sequence = picks(balancer, [backend('a', 70), backend('b', 30)], 1000);

    for (let round = 0; round < 10; round++) {
      const slice = sequence.slice(round * 100, round * 100 + 100);
      expect(count(slice, 'a')).toBe(70);
      expect(count(slice, 'b')).toBe(30);
    }
    expect(longestRun(sequence, 'a')).toBe(3);
    expect(longestRun(sequence, 'b')).toBe(1);
  });

  it("produces nginx's documented sequence for 5/1/1", () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const sequence = picks(balancer, [backend('a', 5), backend('b', 1), backend('c', 1)], 14);

    expect(sequence.join(' ')).toBe('a a b a c a a a a b a c a a');
  });

  it('never picks a drained (weight 0) backend', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const sequence = picks(balancer, [backend('a', 1), backend('drained', 0), backend('b', 1)], 50);

    expect(count(sequence, 'drained')).toBe(0);
    expect(count(sequence, 'a')).toBe(25);
  });

  it('respects the exclusion set and answers undefined when nothing is left', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const candidates = [backend('a', 70), backend('b', 30)];

    for (let i = 0; i < 20; i++) {
      expect(balancer.pick(candidates, { exclude: new Set(['a']) })?.id).toBe('b');
    }
    expect(balancer.pick(candidates, { exclude: new Set(['a', 'b']) })).toBeUndefined();
    expect(balancer.pick([backend('a', 0), backend('b', 0)])).toBeUndefined();
    expect(balancer.pick([])).toBeUndefined();
  });

  it('keeps the rotation when a backend joins instead of starting over', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    expect(balancer.pick([backend('a', 1), backend('b', 1)])?.id).toBe('a');

    // b is due; a reset of the current weights would hand the first pick to a again.
    const sequence = picks(balancer, [backend('a', 1), backend('b', 1), backend('c', 1)], 3);
    expect(sequence[0]).toBe('b');
    expect(sequence.sort()).toEqual(['a', 'b', 'c']);
  });

  it("keeps the others' split while another backend comes and goes", () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const stable = [backend('a', 70), backend('b', 30)];
    const withFlapper = [...stable, backend('c', 50)];
    const rng = seededRng(7);
    const sequence = Array.from({ length: 1000 }, () => balancer.pick(rng() < 0.5 ? withFlapper : stable)?.id ?? '-');

    // Resetting the rotation on every change would hand most of those calls to a (about 0.79).
    const shareOfA = count(sequence, 'a') / (count(sequence, 'a') + count(sequence, 'b'));
    expect(shareOfA).toBeGreaterThan(0.67);
    expect(shareOfA).toBeLessThan(0.73);
  });

  it('does not burst onto the survivors when a heavy backend is removed', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const all = [backend('a', 1), backend('b', 1), backend('c', 98)];
    // A third of the way through a round a has just been served and b has banked a third.
    const before = picks(balancer, all, 34);
    expect(before.at(-1)).toBe('a');

    // Plain nginx arithmetic would now pay b's bank out as about 50 picks in a row.
    const after = picks(balancer, [backend('a', 1), backend('b', 1)], 100);
    expect(Math.abs(count(after, 'a') - count(after, 'b'))).toBeLessThanOrEqual(2);
    expect(longestRun(after, 'a')).toBeLessThanOrEqual(3);
    expect(longestRun(after, 'b')).toBeLessThanOrEqual(3);
  });

  it('does not burst onto a light backend when the heavy one is re-weighted down', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    // Halfway through a round a has banked half of it while b has run ahead.
    expect(picks(balancer, [backend('a', 1), backend('b', 99)], 49)).not.toContain('a');

    // Plain nginx arithmetic would now pay a's bank out as 49 picks in a row.
    const after = picks(balancer, [backend('a', 1), backend('b', 1)], 40);
    expect(longestRun(after, 'a')).toBeLessThanOrEqual(3);
    expect(Math.abs(count(after, 'a') - count(after, 'b'))).toBeLessThanOrEqual(2);
  });

  it('leaves a briefly excluded backend its place in the rotation', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const candidates = [backend('a', 70), backend('b', 30)];
    const sequence: string[] = [];
    for (let i = 0; i < 1000; i++) {
      // Every 50th request is a retry that already failed on a.
      const exclude = i % 50 === 49 ? new Set(['a']) : undefined;
      sequence.push(balancer.pick(candidates, { exclude })?.id ?? '-');
    }

    expect(count(sequence, 'a')).toBeGreaterThanOrEqual(680);
    expect(count(sequence, 'a')).toBeLessThanOrEqual(700);
    expect(longestRun(sequence, 'a')).toBeLessThanOrEqual(4);
  });

  it('starts a forgotten backend afresh when it returns', () => {
    const balancer = new WeightedRoundRobin<Backend>();
    const candidates = [backend('a', 1), backend('b', 1)];
    picks(balancer, candidates, 1);
    balancer.forget('a');
    balancer.forget('b');

    expect(picks(balancer, candidates, 2)).toEqual(['a', 'b']);
  });
});
