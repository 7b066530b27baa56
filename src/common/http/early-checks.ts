import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayException } from '../errors/gateway.exception';

/** A check the first hook runs on every request, before routing decides anything and before any body is read. */
export type EarlyCheck = (request: FastifyRequest) => GatewayException | undefined;

const EARLY_CHECKS = new WeakMap<FastifyInstance, EarlyCheck[]>();

/**
 * Adds a check to the first hook (the IP deny list). A check returns the refusal to answer
 * with, or undefined to let the request go on; it must be synchronous and cheap, as every
 * request pays it.
 */
export function addEarlyCheck(fastify: FastifyInstance, check: EarlyCheck): void {
  earlyChecksOf(fastify).push(check);
}

/** The checks of `fastify`'s first hook (bootstrap/fastify-setup.ts runs them in order). */
export function earlyChecksOf(fastify: FastifyInstance): EarlyCheck[] {
  let checks = EARLY_CHECKS.get(fastify);
  if (!checks) EARLY_CHECKS.set(fastify, (checks = []));
  return checks;
}
