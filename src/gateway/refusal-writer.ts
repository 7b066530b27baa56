import { Logger } from '@nestjs/common';
import { GatewayException } from '../common/errors/gateway.exception';
import { writeRefusal as writeToResponse, writeRefusalToSocket } from '../common/errors/refusal-writer';
import { refusals } from '../common/errors/refusals';
import type { Duplex } from 'node:stream';
import type { GatewayContext } from './context';

const logger = new Logger('Gateway');

/**
 * Answers a refusal of the chain on the context's raw response, in the catalogue's shape, with the
 * headers the steps decided before it (rate-limit, CORS). Anything that is not a GatewayException
 * is logged with the request id and answered as a generic 500.
 */
export function writeRefusal(ctx: GatewayContext, error: unknown): void {
  const res = ctx.res;
  if (res === undefined) return;
  const refusal = asRefusal(ctx, error);
  ctx.gatewayStatus = refusal.getStatus();
  writeToResponse(res, refusal, ctx.requestId, ctx.replyHeaders);
}

/** The same, on a socket no HTTP response object owns (a WebSocket upgrade). */
export function writeToSocket(socket: Duplex, ctx: GatewayContext, error: unknown): void {
  const refusal = asRefusal(ctx, error);
  ctx.gatewayStatus = refusal.getStatus();
  writeRefusalToSocket(socket, refusal, ctx.requestId, ctx.replyHeaders);
}

function asRefusal(ctx: GatewayContext, error: unknown): GatewayException {
  if (error instanceof GatewayException) return error;
  const { name, message, stack } = (error ?? {}) as Error;
  logger.error({ requestId: ctx.requestId, traceId: ctx.traceId, err: { type: name, message, stack } }, 'request failed');
  return refusals.internalError();
}
