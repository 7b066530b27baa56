import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';

/** What guards learn about the caller; set by the auth guards, read by everything after them. */
export interface AuthContext {
  tenantId: string;
  /** Public key id (`igw_<keyId>_...`), or undefined for JWT callers. */
  keyId?: string;
  scopes: readonly string[];
  via: 'api-key' | 'signed-url' | 'jwt';
}

/**
 * Per-request state shared by the pipeline steps (SPEC §2). One object, created in the first
 * hook and hung on both the Fastify request and the raw Node request, so logging (which only
 * sees the raw request) reads the same fields.
 */
export interface RequestState {
  requestId: string;
  clientIp: string;
  startedAt: bigint;
  traceId?: string;
  /** Normalised `traceparent` to send upstream. */
  traceparent?: string;
  auth?: AuthContext;
  /** Route template for metrics and logs (never the raw path). */
  route?: string;
  backend?: string;
  bytesIn?: number;
  bytesOut?: number;
  /** Response headers decided before the handler (rate-limit and quota headers). */
  responseHeaders?: Record<string, string | number>;
}

declare module 'fastify' {
  interface FastifyRequest {
    gw: RequestState;
  }
}

export type RawWithState = IncomingMessage & { gw?: RequestState; id?: string };

export function requestState(request: FastifyRequest): RequestState {
  return request.gw;
}
