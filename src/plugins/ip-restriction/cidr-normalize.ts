import * as ipaddr from 'ipaddr.js';
import { parseCidr } from '../../common/net/cidr';

/**
 * The canonical network form of an allowlist entry, as PostgreSQL's `cidr` type stores it:
 * host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`), a bare address as /32 or /128, and
 * IPv4-mapped IPv6 folded into IPv4 (`::ffff:10.0.0.0/104` → `10.0.0.0/8`). Undefined when invalid.
 */
export function normalizeCidr(text: string): string | undefined {
  const range = parseCidr(text);
  if (!range) return undefined;
  const [address, bits] = range;
  const network =
    address.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${address.toString()}/${bits}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${address.toString()}/${bits}`);
  return `${network.toString()}/${bits}`;
}
