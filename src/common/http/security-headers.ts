import type { FastifyReply, FastifyRequest } from 'fastify';

/** Routes whose responses are the backends' (images): their own headers must pass untouched. */
const PROXIED_ROUTES = new Set(['proxy', 'signed-proxy']);

/**
 * Every response the gateway writes itself (admin and tenant JSON, health, metrics, errors),
 * but not proxied images, whose headers are the backend's, nor the Swagger UI, whose page runs
 * scripts and styles a strict policy would block.
 */
export function needsSecurityHeaders(request: FastifyRequest): boolean {
  if (PROXIED_ROUTES.has(request.gw?.route ?? '')) return false;
  const url = request.raw.url ?? '';
  return !(url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?'));
}

/**
 * Nothing to sniff, nothing to frame or run, and nothing to cache (a key is shown once, in such
 * a response). HSTS only over TLS, as browsers ignore it otherwise.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
});
export const HSTS_HEADER = ['strict-transport-security', 'max-age=31536000; includeSubDomains'] as const;

export function applySecurityHeaders(reply: FastifyReply, request?: FastifyRequest): void {
  for (const name in SECURITY_HEADERS) reply.header(name, SECURITY_HEADERS[name]);
  if (request?.protocol === 'https') reply.header(HSTS_HEADER[0], HSTS_HEADER[1]);
}
