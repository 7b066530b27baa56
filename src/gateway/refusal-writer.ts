import type { OutgoingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { Logger } from '@nestjs/common';
import { ERROR_CATALOGUE } from '../common/errors/error-catalogue';
import { GatewayException } from '../common/errors/gateway.exception';
import type { GatewayContext } from './context';

const logger = new Logger('Gateway');

/** The headers of every answer the gateway writes itself (docs/architecture.md, security headers). */
const SECURITY_HEADERS: OutgoingHttpHeaders = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

/**
 * Writes a refusal of the chain straight to the raw response, in the catalogue's shape
 * (`{"error":{"code","message","requestId",...}}`), with the refusal's own headers
 * (WWW-Authenticate, Retry-After, Allow), the headers steps decided (rate-limit, CORS) and the
 * security headers. Anything that is not a GatewayException is logged with the request id and
 * answered as a generic 500. A response already under way can only be cut.
 */
export function writeRefusal(ctx: GatewayContext, error: unknown): void {
  const res = ctx.res;
  if (res === undefined) return;
  const refusal = error instanceof GatewayException ? error : unexpected(ctx, error);
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const status = refusal.getStatus();
  ctx.gatewayStatus = status;
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message, requestId: ctx.requestId, ...refusal.extras } });
  const headers: OutgoingHttpHeaders = { ...SECURITY_HEADERS };
  const decided = ctx.replyHeaders;
  for (let i = 0; i < decided.length; i += 2) headers[decided[i]] = decided[i + 1];
  for (const name in refusal.headers) headers[name.toLowerCase()] = String(refusal.headers[name]);
  headers['x-request-id'] = ctx.requestId;
  headers['content-type'] = 'application/json; charset=utf-8';
  headers['content-length'] = Buffer.byteLength(body);
  if ((res.socket as TLSSocket | null)?.encrypted) headers['strict-transport-security'] = 'max-age=31536000; includeSubDomains';
  res.writeHead(status, headers);
  res.end(ctx.req?.method === 'HEAD' ? undefined : body);
}

function unexpected(ctx: GatewayContext, error: unknown): GatewayException {
  const { name, message, stack } = (error ?? {}) as Error;
  logger.error({ requestId: ctx.requestId, traceId: ctx.traceId, err: { type: name, message, stack } }, 'request failed');
  return new GatewayException('internal_error', ERROR_CATALOGUE.internal_error.message);
}
