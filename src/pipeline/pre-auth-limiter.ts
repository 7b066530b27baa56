import type { AuthenticationRequest } from '../common/http/request-context';

/**
 * Charges the client IP's bucket of the pre-authentication path (docs/rate-limits-and-quotas.md)
 * before a key is looked up in PostgreSQL, so a flood of random keys is cut before it costs
 * database queries. Provided by the rate-limit module; the auth guard calls it only on a key-cache
 * miss, so a cached key pays nothing, and authenticated requests never spend this bucket.
 * Throws the 429 GatewayException itself when the IP is over its limit.
 */
export interface PreAuthLimiter {
  beforeKeyLookup(request: AuthenticationRequest): Promise<void>;
}

export const PRE_AUTH_LIMITER = Symbol('PRE_AUTH_LIMITER');

/**
 * Runs an authentication step and, when it refuses the caller with 401, charges the client IP's
 * bucket before answering (once per request: a cache miss may have charged it already). Without
 * this, requests with no key, a malformed key, a wrong secret for a cached key id or a bad URL
 * signature would never meet the IP limit, and one address could guess secrets without end.
 * Over the limit the caller gets the 429 instead of the 401. Valid requests pay nothing extra.
 */
export async function chargingRefusals<T>(
  limiter: PreAuthLimiter | undefined,
  request: AuthenticationRequest,
  authenticate: () => Promise<T>,
): Promise<T> {
  try {
    return await authenticate();
  } catch (error) {
    if (limiter && (error as { code?: unknown }).code === 'unauthorized' && !request.gw.ipLimited) {
      await limiter.beforeKeyLookup(request);
    }
    throw error;
  }
}
