import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';

/**
 * A private media type that only streamed-body requests ever carry. Fastify picks a body parser
 * by Content-Type from the parsers of the context a route lives in, and Nest registers every
 * route in the root context, whose JSON parser the admin API needs. So for such a route the
 * request's Content-Type is masked with this one (through `request.headers =`, which Fastify
 * layers over the raw headers, leaving `request.raw.headers` intact for forwarding), and its
 * parser hands the untouched payload stream to the handler. Other routes keep their parsers,
 * their 415s and their body limits.
 */
export const STREAMED_BODY_TYPE = 'application/x-imgproxy-gateway-stream';

/**
 * Nest routes whose bodies stream to the handler (uploads), never parsed or buffered; their route
 * name is set before any guard runs, so metrics and logs name the route even for requests refused
 * early. The proxied routes have their own body handling (src/gateway/http-entry.ts).
 */
@Injectable()
export class StreamedBodyRoutes implements OnModuleInit {
  private readonly routes = new Map<string, string>();

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** `url` is the Fastify route template, e.g. `/api/v1/images`; `name` the route name for metrics. */
  register(url: string, name: string): void {
    this.routes.set(url, name);
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addContentTypeParser(STREAMED_BODY_TYPE, (_request, payload, done) => done(null, payload));
    fastify.addHook('onRequest', (request, _reply, done) => {
      const name = this.routes.get(request.routeOptions.url ?? '');
      if (name !== undefined) {
        request.gw.route = name;
        const method = request.raw.method;
        if (method !== 'GET' && method !== 'HEAD') request.headers = { 'content-type': STREAMED_BODY_TYPE };
      }
      done();
    });
  }
}
