import type { FastifyReply } from 'fastify';

/** Headers for responses the gateway writes itself (errors, admin, health), not proxied images. */
export function applySecurityHeaders(reply: FastifyReply): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('cache-control', 'no-store');
  reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
}
