/** The gateway in its own process, configured by the runner through BENCH_GATEWAY_CONFIG. */
import 'reflect-metadata';
import { createGatewayApp } from '../src/bootstrap/app.factory';
import { loadConfig } from '../src/config/config.loader';
import { runMigrations } from '../src/database/migration-runner';
import { RedisService } from '../src/redis/redis.service';
import { requiredEnv, serveParticipant } from './participant';

serveParticipant('gateway', async () => {
  const overrides = JSON.parse(requiredEnv('BENCH_GATEWAY_CONFIG')) as Record<string, unknown>;
  // Production settings (config/production.yaml), with the secrets and limits the runner sets.
  const { config } = loadConfig({ env: { NODE_ENV: 'production' }, overrides });
  if (config.database.url && config.database.migrationsRun) await runMigrations(config.database.url);

  const app = await createGatewayApp(config);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const redisWrites = countRedisWrites(app.get(RedisService));
  return { url: `http://127.0.0.1:${port}`, close: () => app.close(), extra: () => ({ redisWrites: redisWrites() }) };
});

/**
 * Socket writes on the gateway's Redis command connection. Measured while requests are sent one
 * at a time, each write is one round trip of that request (commands sent together share it);
 * under load the connection's automatic pipelining merges the writes of concurrent requests.
 */
function countRedisWrites(redis: RedisService): () => number {
  let writes = 0;
  const client = redis.client as unknown as { stream?: { write: (...args: unknown[]) => boolean } } | undefined;
  const stream = client?.stream;
  if (!stream) return () => 0;
  const write = stream.write;
  stream.write = function (...args: unknown[]) {
    writes++;
    return write.apply(this, args);
  };
  return () => writes;
}
