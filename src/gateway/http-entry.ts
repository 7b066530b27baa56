import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { GatewayException } from '../common/errors/gateway.exception';
import { allowedMethods } from '../common/http/allowed-methods';
import { earlyRefusal } from './early-checks';
import { requestIdFor } from '../common/http/request-id';
import { RandomHexPool } from '../common/http/random-hex';
import { CidrMatcher } from '../common/net/cidr';
import { GatewayConfig } from '../config/gateway-config';
import { chainNanos, outsideChain, timeRequestEntry } from './step-timings';
import { contextFor } from './context';
import { GatewayService } from './gateway.service';
import { UNMATCHED_ROUTE } from './request-observer';
import { writeToSocket } from './refusal-writer';
import { PluginRegistry } from './plugin-registry';

/** Methods the catch-all takes; TRACE too, so it is refused in the catalogue's shape (405). */
const CATCH_ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'];

/**
 * Where proxied traffic enters: one Fastify catch-all route (`/*`, every method) that hands the
 * raw request and response to the route table. Fastify's router prefers static and parametric
 * routes over a wildcard, so Nest's own routes (/admin, /api/v1, /docs, /health, /metrics) keep
 * winning. The catch-all lives in its own encapsulated context whose only body parser hands the
 * stream over untouched: proxied bodies are never parsed or buffered, while the admin API keeps
 * its JSON parser and limits. The reply is hijacked: the chain writes to the raw response once.
 *
 * WebSocket upgrades never reach Fastify; they are taken from the HTTP server here (CONNECT is
 * refused by the first request hooks' server listener).
 */
@Injectable()
export class GatewayHttpEntry implements OnModuleInit {
  private readonly logger = new Logger('Gateway');
  private readonly trustedProxies: CidrMatcher;
  private readonly ids = (() => {
    const random = new RandomHexPool();
    return { span: () => random.next(8), trace: () => random.next(16) };
  })();

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly gateway: GatewayService,
    private readonly plugins: PluginRegistry,
    config: GatewayConfig,
  ) {
    this.trustedProxies = new CidrMatcher(config.server.trustedProxies);
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    void fastify.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
      scope.route({
        method: CATCH_ALL_METHODS,
        url: '/*',
        handler: (request, reply) => {
          reply.hijack();
          this.gateway.handle(request.gw, request.raw, reply.raw);
        },
      });
    });
    this.gateway.nestMethodsAt = (url) => allowedMethods(fastify, url);
    const server = fastify.server as Server;
    if (outsideChain) timeRequestEntry(server, outsideChain, () => chainNanos(this.gateway.current()));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head, fastify));
  }

  /**
   * A WebSocket upgrade: the route must say `websocket: true`; its access steps (authentication,
   * IP lists, limits, quota) run as for any request, then the socket is piped to a backend.
   */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, fastify: FastifyInstance): void {
    socket.on('error', () => socket.destroy());
    const ctx = contextFor(req, requestIdFor(req), this.trustedProxies, this.ids);
    ctx.req = req;
    // What the first request hook does for every other request (the IP deny list).
    const early = earlyRefusal(fastify, ctx);
    if (early) {
      ctx.routeTemplate = UNMATCHED_ROUTE;
      writeToSocket(socket, ctx, early);
      return;
    }
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const match = this.gateway.current().match(req.method ?? 'GET', query === -1 ? url : url.slice(0, query));
    if (match.kind !== 'route' || !match.route.spec.websocket) {
      ctx.routeTemplate = match.kind === 'route' ? match.route.spec.path : UNMATCHED_ROUTE;
      const refusal =
        match.kind === 'none'
          ? new GatewayException('not_found', 'No route matches this path.')
          : new GatewayException('validation_failed', 'This route does not accept WebSocket upgrades.');
      writeToSocket(socket, ctx, refusal);
      return;
    }
    const route = match.route;
    ctx.compiled = route;
    ctx.route = route.spec.name;
    ctx.routeTemplate = route.spec.path;
    ctx.params = match.params;
    route.chain
      .admit(ctx)
      .then((refusal) => {
        if (refusal) writeToSocket(socket, ctx, refusal);
        else this.plugins.upgradeHandler()(ctx, socket, head);
      })
      .catch((error: unknown) => {
        if (error instanceof GatewayException) return writeToSocket(socket, ctx, error);
        this.logger.error({ requestId: ctx.requestId, err: (error as Error).message }, 'websocket upgrade failed');
        writeToSocket(socket, ctx, new GatewayException('internal_error'));
      });
  }
}
