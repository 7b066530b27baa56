import { IpHash, unitHash } from './ip-hash';

interface Backend {
  id: string;
  weight: number;
}

const ips = Array.from({ length: 4000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`);
const five: Backend[] = ['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => ({ id, weight: 1 }));

function mapping(balancer: IpHash<Backend>, backends: Backend[], exclude?: Set<string>): Map<string, string> {
  return new Map(ips.map((clientIp) => [clientIp, balancer.pick(backends, { clientIp, exclude })?.id ?? '-']));
}

describe('IpHash', () => {
  it('sends a client to the same backend every time, from any gateway instance', () => {
    const first = mapping(new IpHash(), five);

    expect(mapping(new IpHash(), five)).toEqual(first);
    expect(new Set(first.values()).size).toBe(5);
  });

  it('moves only the removed backend’s clients when one backend leaves', () => {
    const balancer = new IpHash<Backend>();
    const before = mapping(balancer, five);
    const after = mapping(balancer, five.filter((b) => b.id !== 'b3'));

    let moved = 0;
    for (const ip of ips) {
      if (before.get(ip) === 'b3') moved++;
      else expect(after.get(ip)).toBe(before.get(ip));
    }
    // About a fifth of the clients, spread over the four survivors.
    expect(moved).toBeGreaterThan(ips.length * 0.15);
    expect(moved).toBeLessThan(ips.length * 0.25);
  });

  it('moves clients only onto a backend that joins', () => {
    const balancer = new IpHash<Backend>();
    const before = mapping(balancer, five);
    const after = mapping(balancer, [...five, { id: 'b6', weight: 1 }]);

    let moved = 0;
    for (const ip of ips) {
      if (after.get(ip) === before.get(ip)) continue;
      expect(after.get(ip)).toBe('b6');
      moved++;
    }
    expect(moved).toBeGreaterThan(ips.length * 0.12);
    expect(moved).toBeLessThan(ips.length * 0.22);
  });

  it('sends a retry to the client’s second choice, the same backend it gets if the first is removed', () => {
    const balancer = new IpHash<Backend>();
    const withoutB1 = mapping(balancer, five.slice(1));
    const retried = mapping(balancer, five, new Set(['b1']));

    expect(retried).toEqual(withoutB1);
  });

  it('shares clients in proportion to weight', () => {
    const balancer = new IpHash<Backend>();
    const picks = mapping(balancer, [
      { id: 'heavy', weight: 3 },
      { id: 'light', weight: 1 },
    ]);
    const heavyShare = [...picks.values()].filter((id) => id === 'heavy').length / ips.length;

    expect(heavyShare).toBeGreaterThan(0.72);
    expect(heavyShare).toBeLessThan(0.78);
  });

  it('spreads requests without a client IP instead of hashing them all onto one backend', () => {
    const balancer = new IpHash<Backend>();
    const sequence = Array.from({ length: 4 }, () => balancer.pick(five.slice(0, 2))?.id);

    expect(sequence).toEqual(['b1', 'b2', 'b1', 'b2']);
  });
});

describe('unitHash', () => {
  it('stays strictly inside (0, 1) and does not depend on the process', () => {
    const values = ips.map((ip) => unitHash(ip));

    expect(values.every((u) => u > 0 && u < 1)).toBe(true);
    expect(unitHash('203.0.113.7\u0000b1')).toBe(unitHash('203.0.113.7\u0000b1'));
    // cyrb53('a') is 7929297801672961 in the reference implementation. A different hash would
    // remap every client while old and new gateway versions run side by side.
    expect(unitHash('a')).toBe((Math.floor(7929297801672961 / 2) + 0.5) / 2 ** 52);
  });
});
