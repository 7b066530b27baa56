import type { BalancerContext, BalancerStrategy, WeightedCandidate } from './balancer.strategy';
import { eligibleCandidates } from './eligible-candidates';
import { WeightedRoundRobin } from './weighted-round-robin';

/**
 * Client-IP affinity by weighted rendezvous hashing (highest random weight): every backend scores
 * `weight / -ln(u)` with `u` a hash of (client IP, backend id) mapped into (0, 1), and the highest
 * score wins. Each client's ranking of backends is fixed, so:
 * - removing (or excluding, or losing to an open circuit) one backend moves only the clients that
 *   ranked it first, onto their second choice, and the rest stay put; adding one takes over only
 *   the share it wins;
 * - every gateway instance computes the same mapping with no shared state (ids come from the
 *   database and are the same everywhere);
 * - the expected share is proportional to weight.
 *
 * The IP is hashed as given: the client-IP resolver already canonicalises it.
 * Without a client IP (it should always be known) requests spread by weighted round robin rather
 * than all hashing the empty string onto one backend.
 */
export class IpHash<T extends WeightedCandidate = WeightedCandidate> implements BalancerStrategy<T> {
  private readonly fallback = new WeightedRoundRobin<T>();

  pick(candidates: readonly T[], ctx?: BalancerContext): T | undefined {
    const clientIp = ctx?.clientIp;
    if (!clientIp) return this.fallback.pick(candidates, ctx);
    let best: T | undefined;
    let bestScore = -Infinity;
    for (const candidate of eligibleCandidates(candidates, ctx.exclude)) {
      const score = candidate.weight / -Math.log(unitHash(`${clientIp}\u0000${candidate.id}`));
      if (score > bestScore) {
        best = candidate;
        bestScore = score;
      }
    }
    return best;
  }

  forget(id: string): void {
    this.fallback.forget(id);
  }
}

const TWO_POW_52 = 2 ** 52;

/**
 * cyrb53 (a public-domain 53-bit string hash with full avalanche) mapped into the open interval
 * (0, 1), so `-ln(u)` is finite and positive. Deterministic across processes and Node versions,
 * unlike anything seeded per process.
 */
export function unitHash(key: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hash = 4294967296 * (2097151 & h2) + (h1 >>> 0);
  // 52 bits plus a half step keeps u strictly inside (0, 1) in double precision.
  return (Math.floor(hash / 2) + 0.5) / TWO_POW_52;
}
