import * as ipaddr from 'ipaddr.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Only the canonical spellings: four dotted decimals for IPv4 (ipaddr.js also takes octal
 * `010.0.0.1`, short `127.1` and bare `24`, which would make an allowlist entry cover another
 * network than the one typed) and IPv6 without a zone id.
 */
function isCanonicalAddress(address: string): boolean {
  if (address.includes(':')) return !address.includes('%') && ipaddr.IPv6.isValid(address);
  return ipaddr.IPv4.isValidFourPartDecimal(address);
}

/** Parses an address, folding IPv4-mapped IPv6 (`::ffff:a.b.c.d`) into IPv4. */
export function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!isCanonicalAddress(address)) return undefined;
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed;
}

/** Canonical text of an address (mapped IPv6 folded to IPv4), or undefined when invalid. */
export function normalizeAddress(address: string): string | undefined {
  return parseAddress(address)?.toString();
}

/** Parses `a.b.c.d/n`, `x::/n`, or a bare address (a /32 or /128). */
export function parseCidr(text: string): Range | undefined {
  const value = text.trim();
  try {
    if (value.includes('/')) {
      const slash = value.indexOf('/');
      if (!isCanonicalAddress(value.slice(0, slash)) || !/^\d{1,3}$/.test(value.slice(slash + 1))) return undefined;
      const [address, bits] = ipaddr.parseCIDR(value);
      if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
        return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
      }
      return [address, bits];
    }
    const address = parseAddress(value);
    if (!address) return undefined;
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  } catch {
    return undefined;
  }
}

export function isValidCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

/**
 * A compiled list of CIDR ranges. Built once (config load, allowlist change) and reused on
 * every request, so the hot path never re-parses a range.
 */
export class CidrMatcher {
  private readonly v4: Range[] = [];
  private readonly v6: Range[] = [];

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const range = parseCidr(cidr);
      if (!range) throw new Error(`invalid CIDR: ${cidr}`);
      (range[0].kind() === 'ipv4' ? this.v4 : this.v6).push(range);
    }
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  matches(address: string): boolean {
    const parsed = parseAddress(address);
    if (!parsed) return false;
    const ranges = parsed.kind() === 'ipv4' ? this.v4 : this.v6;
    for (const [base, bits] of ranges) {
      if (parsed.match(base, bits)) return true;
    }
    return false;
  }
}
