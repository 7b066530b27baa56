import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayContext, contextFor } from '../../gateway/context';
import { CidrMatcher } from '../net/cidr';
import { RandomHexPool } from './random-hex';
import { RawWithState } from './request-context';
import { needsSecurityHeaders, applySecurityHeaders } from './security-headers';
import { requestIdFor } from './request-id';

export function createFastifyAdapter(config: GatewayConfig): FastifyAdapter {
  return new FastifyAdapter({
    genReqId: requestIdFor,
    bodyLimit: config.server.jsonBodyLimitBytes,
    // X-Forwarded-For is resolved by our own trusted-proxy rule (docs/proxy-and-backends.md), never by Fastify.
    trustProxy: false,
    return503OnClosing: true,
    // Close idle keep-alive sockets at shutdown so draining does not wait on them.
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 4096 },
  });
}

/**
 * The first step of every request: request id echo, client address, trace context. Runs as
 * an onRequest hook, before routing, so even 404s and body-parser errors carry the id.
 */
export function installRequestHooks(fastify: FastifyInstance, config: GatewayConfig): void {
  const trustedProxies = new CidrMatcher(config.server.trustedProxies);
  const random = new RandomHexPool();
  const ids = { span: () => random.next(8), trace: () => random.next(16) };
  fastify.decorateRequest('gw', null as unknown as GatewayContext);
  fastify.addHook('onRequest', (request, reply, done) => {
    const state = contextFor(request.raw, request.id, trustedProxies, ids);
    request.gw = state;
    (request.raw as RawWithState).gw = state;
    reply.header('x-request-id', request.id);
    done();
  });
  // A hook, not a Nest interceptor: interceptors cost an async wrapper and an Observable per
  // request, and this must also cover responses no controller writes.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (needsSecurityHeaders(request)) applySecurityHeaders(reply, request);
    done(null, payload);
  });
}
