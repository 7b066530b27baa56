import { BALANCER_NAMES, createBalancer, type BalancerName } from './balancers';
import { IpHash } from './ip-hash';
import { LeastConnections } from './least-connections';
import { WeightedRandom } from './random';
import { WeightedRoundRobin } from './weighted-round-robin';

const backends = [
  { id: 'a', weight: 3 },
  { id: 'b', weight: 1 },
  { id: 'drained', weight: 0 },
];

describe('createBalancer', () => {
  it.each([
    ['weighted-round-robin', WeightedRoundRobin],
    ['least-connections', LeastConnections],
    ['ip-hash', IpHash],
    ['random', WeightedRandom],
  ] as const)('builds %s', (name, type) => {
    expect(createBalancer(name)).toBeInstanceOf(type);
  });

  it('builds an independent strategy on every call', () => {
    const pair = [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
    ];
    const first = createBalancer('weighted-round-robin');
    const second = createBalancer('weighted-round-robin');

    expect(first.pick(pair)?.id).toBe('a');
    // Shared state would make this b: two upstreams must not share one rotation.
    expect(second.pick(pair)?.id).toBe('a');
  });

  it('refuses a name it does not know', () => {
    expect(() => createBalancer('fastest' as BalancerName)).toThrow(RangeError);
  });
});

// The same contract for every strategy, so draining and retry exclusion mean the same whichever
// algorithm an upstream is configured with.
describe.each(BALANCER_NAMES)('%s contract', (name) => {
  const clientIps = Array.from({ length: 50 }, (_, i) => `198.51.100.${i}`);

  it('picks only weighted candidates, and every one of them eventually', () => {
    const balancer = createBalancer(name, { rng: sequenceRng() });
    const seen = new Set<string>();
    for (const clientIp of [...clientIps, ...clientIps]) {
      const picked = balancer.pick(backends, { clientIp });
      seen.add(picked?.id ?? '-');
    }

    expect([...seen].sort()).toEqual(['a', 'b']);
  });

  it('never picks an excluded candidate', () => {
    const balancer = createBalancer(name, { rng: sequenceRng() });
    for (const clientIp of clientIps) {
      expect(balancer.pick(backends, { clientIp, exclude: new Set(['a']) })?.id).toBe('b');
    }
  });

  it('answers undefined when nothing is eligible', () => {
    const balancer = createBalancer(name, { rng: sequenceRng() });

    expect(balancer.pick([], { clientIp: '198.51.100.1' })).toBeUndefined();
    expect(balancer.pick(backends, { clientIp: '198.51.100.1', exclude: new Set(['a', 'b']) })).toBeUndefined();
    expect(balancer.pick([{ id: 'x', weight: 0 }, { id: 'y', weight: Number.NaN }])).toBeUndefined();
  });
});

/** Walks evenly through [0, 1) so `random` covers every slice without depending on luck. */
function sequenceRng(): () => number {
  let i = 0;
  return () => ((i++ * 0.37) % 1);
}
