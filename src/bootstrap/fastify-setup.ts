import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayContext, RawWithState, contextFor } from '../gateway/context';
import { sendRefusal, writeRefusalToSocket } from '../common/errors/refusal-writer';
import { refusals } from '../common/errors/refusals';
import { CidrMatcher } from '../common/net/cidr';
import { allowedMethods } from '../common/http/allowed-methods';
import { earlyChecksOf } from '../gateway/early-checks';
import { clientErrorRefusal } from '../common/http/client-error';
import { jsonNestingExceeds } from '../common/http/json-body';
import { RandomHexPool } from '../common/http/random-hex';
import { needsSecurityHeaders, applySecurityHeaders } from '../common/http/security-headers';
import { requestIdFor } from '../common/http/request-id';
import { SECTION, outsideChain } from '../gateway/step-timings';

/**
 * Nest's Fastify adapter with the gateway's JSON body parser in place of Nest's own (registered
 * when the application initialises, so it is replaced right after).
 */
class GatewayFastifyAdapter extends FastifyAdapter {
  override registerParserMiddleware(prefix?: string, rawBody?: boolean): void {
    super.registerParserMiddleware(prefix, rawBody);
    installJsonParser(this.getInstance());
  }
}

export function createFastifyAdapter(config: GatewayConfig): FastifyAdapter {
  const adapter: FastifyAdapter = new GatewayFastifyAdapter({
    genReqId: requestIdFor,
    bodyLimit: config.server.jsonBodyLimitBytes,
    // X-Forwarded-For is resolved by our own trusted-proxy rule (docs/proxy-and-backends.md), never by Fastify.
    trustProxy: false,
    return503OnClosing: true,
    // Close idle keep-alive sockets at shutdown so draining does not wait on them.
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 4096 },
    // Answers Fastify gives before any hook runs: a path with a malformed escape (`%E9`, `%ZZ`)
    // or an overlong parameter. Fastify's own body echoes the whole path, key id and signature
    // included; ours is the catalogue's, with the request id.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      reply.header('x-request-id', request.id);
      const refusal = error.code === 'FST_ERR_ASYNC_CONSTRAINT' ? refusals.internalError() : refusals.badUrl('The request URL is malformed.');
      sendRefusal(reply, refusal);
    },
    // Node's HTTP parser refused the bytes (garbage, a 431, a 408, an unknown method): no request
    // exists, so the answer is written onto the socket.
    clientErrorHandler: (error: { code?: string; rawPacket?: unknown }, socket: Socket) => {
      if (socket.destroyed) return;
      const rawPacket = Buffer.isBuffer(error.rawPacket) ? error.rawPacket : undefined;
      const refusal = clientErrorRefusal({ code: error.code, rawPacket }, (path) => allowedMethods(adapter.getInstance(), path));
      if (refusal === undefined) socket.destroy();
      else writeRefusalToSocket(socket, refusal, randomUUID());
    },
  });
  return adapter;
}

/** The gateway's catch-all route for proxied traffic (src/gateway/http-entry.ts). */
const PROXIED_CATCH_ALL = '/*';

/**
 * The first step of every request: request id echo, client address, trace context, then the
 * early checks (the IP deny list) and the methods no route serves (TRACE). Runs as an onRequest
 * hook, before routing, so even 404s and body-parser errors carry the id, and a refusal here
 * costs no route, guard or body.
 */
export function installRequestHooks(fastify: FastifyInstance, config: GatewayConfig): void {
  const trustedProxies = new CidrMatcher(config.server.trustedProxies);
  const random = new RandomHexPool();
  const ids = { span: () => random.next(8), trace: () => random.next(16) };
  const checks = earlyChecksOf(fastify);
  fastify.decorateRequest('gw', null as unknown as GatewayContext);
  // Only with GATEWAY_STEP_TIMINGS=1 (the benchmark's budget per step).
  const timings = outsideChain;
  const contextSection = timings?.section(SECTION.context) ?? 0;
  fastify.addHook('onRequest', (request, reply, done) => {
    const started = timings ? process.hrtime.bigint() : 0n;
    const state = contextFor(request.raw, request.id, trustedProxies, ids);
    request.gw = state;
    (request.raw as RawWithState).gw = state;
    reply.header('x-request-id', request.id);
    if (timings) timings.lap(contextSection, started);
    for (let i = 0; i < checks.length; i++) {
      const refusal = checks[i](state);
      if (refusal !== undefined) {
        sendRefusal(reply, refusal);
        return;
      }
    }
    // TRACE echoes the request back, credentials included (cross-site tracing): no route serves it.
    // On the proxied catch-all the route table answers it, with the matched route's Allow.
    if (request.raw.method === 'TRACE' && request.routeOptions.url !== PROXIED_CATCH_ALL) {
      sendRefusal(reply, refusals.methodNotAllowed(allowedMethods(fastify, request.url)));
      return;
    }
    done();
  });
  // A hook, not a Nest interceptor: interceptors cost an async wrapper and an Observable per
  // request, and this must also cover responses no controller writes.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (needsSecurityHeaders(request)) applySecurityHeaders(reply, request);
    done(null, payload);
  });
  // CONNECT (proxy tunnelling) never becomes a request: Node hands it over as a socket, and
  // without a listener it would cut the connection without an answer.
  fastify.server.on('connect', (request: IncomingMessage, socket: Duplex) => {
    const path = request.url?.startsWith('/') ? request.url : undefined;
    writeRefusalToSocket(socket, refusals.methodNotAllowed(path ? allowedMethods(fastify, path) : []), requestIdFor(request));
  });
}

/**
 * `application/json` bodies: an empty body is no body (a DELETE or POST sent with the header
 * and nothing else), a body nested deeper than any payload of the API is refused with 400 before
 * it is parsed, and everything else goes to Fastify's parser (prototype-poisoning checks
 * included), within the server's body limit.
 */
function installJsonParser(fastify: FastifyInstance): void {
  const parse = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(null, undefined);
      return;
    }
    if (jsonNestingExceeds(text)) {
      done(refusals.validationFailed([], 'The JSON body is nested too deeply.'), undefined);
      return;
    }
    parse(request, text, done);
  });
}
