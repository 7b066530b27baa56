import type { FastifyInstance } from 'fastify';
import type { GatewayException } from '../common/errors/gateway.exception';
import type { GatewayContext } from './context';

/**
 * A check the first hook runs on every request, before routing decides anything and before any
 * body is read, and the WebSocket entry on every upgrade (which no Fastify hook sees). It reads
 * the request's context only (client address, headers), so both can call it.
 */
export type EarlyCheck = (ctx: GatewayContext) => GatewayException | undefined;

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

/** The first early check's refusal of a request that no Fastify hook sees (a WebSocket upgrade), or undefined. */
export function earlyRefusal(fastify: FastifyInstance, ctx: GatewayContext): GatewayException | undefined {
  const checks = earlyChecksOf(fastify);
  for (let i = 0; i < checks.length; i++) {
    const refusal = checks[i](ctx);
    if (refusal !== undefined) return refusal;
  }
  return undefined;
}
