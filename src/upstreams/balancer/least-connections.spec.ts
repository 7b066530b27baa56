import { LeastConnections } from './least-connections';

const a = { id: 'a', weight: 1 };
const b = { id: 'b', weight: 1 };
const c = { id: 'c', weight: 1 };

describe('LeastConnections', () => {
  it('sends the next request to the backend with the fewest active requests', () => {
    const balancer = new LeastConnections();
    balancer.acquire('a');
    balancer.acquire('a');
    balancer.acquire('b');

    expect(balancer.pick([a, b, c])?.id).toBe('c');
    balancer.acquire('c');
    balancer.acquire('c');
    expect(balancer.pick([a, b, c])?.id).toBe('b');
  });

  it('weighs active requests by weight', () => {
    const balancer = new LeastConnections();
    const heavy = { id: 'heavy', weight: 4 };
    for (let i = 0; i < 3; i++) balancer.acquire('heavy');
    balancer.acquire('a');

    // 3/4 active per unit of weight beats 1/1.
    expect(balancer.pick([a, heavy])?.id).toBe('heavy');
    balancer.acquire('heavy');
    balancer.acquire('heavy');
    expect(balancer.pick([a, heavy])?.id).toBe('a');
  });

  it('spreads idle traffic round-robin instead of always taking the first backend', () => {
    const balancer = new LeastConnections();
    const sequence = Array.from({ length: 6 }, () => balancer.pick([a, b, c])?.id);

    expect(sequence).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('sees finished requests through release and never counts below zero', () => {
    const balancer = new LeastConnections();
    balancer.acquire('a');
    balancer.acquire('a');
    balancer.acquire('b');
    balancer.release('a');
    balancer.release('a');
    balancer.release('a');

    expect(balancer.activeCount('a')).toBe(0);
    expect(balancer.pick([a, b])?.id).toBe('a');
  });

  it('forgets a removed backend, so a late release cannot make it look idle', () => {
    const balancer = new LeastConnections();
    balancer.acquire('a');
    balancer.forget('a');
    balancer.release('a');
    balancer.acquire('a');

    expect(balancer.activeCount('a')).toBe(1);
  });

  it('skips excluded and drained backends', () => {
    const balancer = new LeastConnections();
    balancer.acquire('b');

    expect(balancer.pick([a, b, { id: 'idle-drained', weight: 0 }], { exclude: new Set(['a']) })?.id).toBe('b');
  });
});
