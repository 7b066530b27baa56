import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HeaderPairs } from './admission.types';

/**
 * Puts headers on both paths a response may take: the Fastify reply (answers sent through
 * `reply.send`, including errors) and `request.gw.responseHeaders` (answers streamed through
 * `reply.raw`, which bypasses the headers set on the reply).
 */
export function applyResponseHeaders(request: FastifyRequest, reply: FastifyReply, headers: HeaderPairs): void {
  if (headers.length === 0) return;
  const kept = (request.gw.responseHeaders ??= {});
  for (const [name, value] of headers) {
    kept[name] = value;
    reply.header(name, value);
  }
}
