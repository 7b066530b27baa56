/**
 * The cache-hit participant in its own process: node:http in front of ProxyCache, answering the
 * way the request chain's cache step does (lookup, then one writeHead + end for a hit; a miss is
 * fetched through one undici pool and fed to the fill). No other step runs: this is what a hit
 * costs on its own. `node cache-child.js` with BENCH_UPSTREAM.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import 'reflect-metadata';
import { Pool } from 'undici';
import { GatewayException } from '../src/common/errors/gateway.exception';
import { GatewayConfig } from '../src/config/gateway-config';
import { GatewayMetrics } from '../src/metrics/gateway-metrics.service';
import type { CacheFill } from '../src/plugins/proxy-cache/cache-lookup';
import { feedFill } from '../src/proxy/feed-fill';
import { ProxyCache } from '../src/plugins/proxy-cache/proxy-cache';
import { requiredEnv, serveParticipant } from './participant';

serveParticipant('cache', async () => {
  const upstream = requiredEnv('BENCH_UPSTREAM');
  const pool = new Pool(upstream, { connections: 128, keepAliveTimeout: 4_000 });
  const config = new GatewayConfig();
  const cache = new ProxyCache(config, new GatewayMetrics(config));
  let fetches = 0;
  let requestIds = 0;
  const server = createServer((req, res) => {
    const fetch = (fill: CacheFill): void => {
      fetches++;
      pool
        .request({ path: req.url ?? '/', method: 'GET', headers: { accept: req.headers.accept ?? '*/*' }, signal: fill.signal })
        .then((answer) => feedFill(fill, answer))
        .catch(() => fill.fail(new GatewayException('bad_gateway')));
    };
    const outcome = cache.lookup(
      { tenantId: 'bench-tenant', method: req.method ?? 'GET', upstreamPath: req.url ?? '/', sourceUrl: req.url ?? '/', requestHeaders: req.headers },
      fetch,
    );
    const extra = ['x-request-id', `bench-${++requestIds}`];
    if (outcome.kind === 'hit') {
      outcome.respond(res, extra);
    } else if (outcome.kind === 'wait') {
      outcome.response.then((response) => response.respond(res, extra)).catch(() => res.destroy());
    } else {
      res.writeHead(502).end();
    }
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
    extra: () => ({ fetches, cacheEntries: cache.memoryStats.entries, cacheBytes: cache.memoryStats.bytes }),
  };
});
