import replyFrom from '@fastify/reply-from';
import Fastify, { type FastifyInstance } from 'fastify';

/**
 * A peer of the yardstick: bare Fastify (no Nest, no hooks of ours) with `@fastify/reply-from`,
 * one undici pool to the backend, every request passed through as it came.
 */
export async function startReplyFromProxy(upstream: string): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  await app.register(replyFrom, { base: upstream, undici: { connections: 128, pipelining: 1, keepAliveTimeout: 4_000 } });
  app.all('/*', (request, reply) => {
    void reply.from(request.url);
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}
