import 'reflect-metadata';
import { All, Controller, Inject, Module, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Pool, type Dispatcher } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
const UPSTREAM = Symbol('upstream pool');

/** One handler that streams the request through undici: what Nest on Fastify costs by itself. */
@Controller()
class PassThroughController {
  constructor(@Inject(UPSTREAM) private readonly pool: Pool) {}

  @All('*')
  async pass(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<FastifyReply> {
    const headers: Record<string, string | string[]> = {};
    for (const name in request.headers) {
      const value = request.headers[name];
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    }
    const upstream = await this.pool.request({ path: request.url, method: request.method as Dispatcher.HttpMethod, headers });
    const out: Record<string, string | string[]> = {};
    for (const name in upstream.headers) {
      const value = upstream.headers[name];
      if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
    }
    return reply.code(upstream.statusCode).headers(out).send(upstream.body);
  }
}

/**
 * A peer of the yardstick: a minimal NestJS application on Fastify (no guards, interceptors,
 * pipes or hooks) whose one controller passes every request through one undici pool.
 */
export async function startNestProxy(upstreamUrl: string): Promise<{ app: NestFastifyApplication; url: string }> {
  const pool = new Pool(upstreamUrl, { connections: 128, keepAliveTimeout: 4_000 });
  @Module({ controllers: [PassThroughController], providers: [{ provide: UPSTREAM, useValue: pool }] })
  class PassThroughModule {}
  const app = await NestFactory.create<NestFastifyApplication>(PassThroughModule, new FastifyAdapter(), { logger: false });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { app, url: `http://127.0.0.1:${port}` };
}
