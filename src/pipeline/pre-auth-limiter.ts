import type { FastifyRequest } from 'fastify';

/**
 * Consumes the client IP's bucket before a key is looked up in PostgreSQL (SPEC §2.3), so a
 * flood of random keys is cut before it costs database queries. Provided by the rate-limit
 * module; the auth guard calls it only on a key-cache miss, so a cached key pays nothing.
 * Throws the 429 GatewayException itself when the IP is over its limit.
 */
export interface PreAuthLimiter {
  beforeKeyLookup(request: FastifyRequest): Promise<void>;
}

export const PRE_AUTH_LIMITER = Symbol('PRE_AUTH_LIMITER');
