import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/**
 * The yardstick of the performance targets (docs/proxy-and-backends.md): the least a Node pass-through proxy can do
 * (node:http in, one undici keep-alive pool out, bodies piped), with none of the gateway's work.
 */
export async function startBaselineProxy(upstream: string, port = 0): Promise<{ server: Server; url: string }> {
  const pool = new Pool(upstream, { connections: 128, keepAliveTimeout: 4_000 });
  const server = createServer((req, res) => {
    const headers: IncomingHttpHeaders = {};
    for (const name in req.headers) if (!HOP_BY_HOP.has(name)) headers[name] = req.headers[name];
    pool.request({ path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers: headers as Record<string, string> }).then(
      (upstreamRes) => {
        const out: Record<string, string | string[]> = {};
        for (const name in upstreamRes.headers) {
          const value = upstreamRes.headers[name];
          if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
        }
        res.writeHead(upstreamRes.statusCode, out);
        pipeline(upstreamRes.body, res, () => undefined);
      },
      () => {
        res.statusCode = 502;
        res.end();
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
