import { CidrMatcher, normalizeAddress } from './cidr';

/**
 * The client address of docs/proxy-and-backends.md: the socket address, unless that address is a trusted
 * proxy; then the right-most X-Forwarded-For entry that is not itself a trusted proxy.
 * Entries left of an untrusted hop could be forged by the client, so they are never used.
 */
export function resolveClientIp(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustedProxies: CidrMatcher,
): string {
  const socketIp = normalizeAddress(socketAddress ?? '') ?? socketAddress ?? '';
  if (trustedProxies.size === 0 || !forwardedFor || !trustedProxies.matches(socketIp)) return socketIp;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop.length > 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]);
    if (!hop) return socketIp; // a garbled hop: stop trusting the chain there
    if (!trustedProxies.matches(hop)) return hop;
  }
  return normalizeAddress(hops[0] ?? '') ?? socketIp;
}
