import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HeaderMap } from './rate-limit-headers';
import type { BucketResult } from './token-bucket';

/** The ip bucket's result when it was consumed before the key lookup, for the guard's headers. */
const preAuthResults = new WeakMap<object, readonly BucketResult[]>();

export function rememberPreAuthResults(request: object, results: readonly BucketResult[]): void {
  preAuthResults.set(request, results);
}

export function preAuthResultsOf(request: object): readonly BucketResult[] {
  return preAuthResults.get(request) ?? [];
}

/**
 * Puts headers on both paths a response may take: the Fastify reply (answers sent through
 * `reply.send`, including errors) and `request.gw.responseHeaders` (answers streamed through
 * `reply.raw`, which bypasses the headers set on the reply).
 */
export function applyResponseHeaders(request: FastifyRequest, reply: FastifyReply, headers: HeaderMap): void {
  const gw = request.gw;
  Object.assign((gw.responseHeaders ??= {}), headers);
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
}
