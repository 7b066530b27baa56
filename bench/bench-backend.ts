import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Size of the "image" every benchmark request fetches: a small thumbnail. */
export const IMAGE_BYTES = 8 * 1024;
/** The streaming memory check's response. */
export const LARGE_BYTES = 64 * 1024 * 1024;
/** Source name that asks for the large response; the gateway may re-encode the source in base64. */
export const LARGE_SOURCE = 'bench-large.bin';

function wantsLarge(url: string): boolean {
  if (url.includes(LARGE_SOURCE)) return true;
  const last = url.slice(url.lastIndexOf('/') + 1).split('.')[0];
  return Buffer.from(last, 'base64url').toString('latin1').includes(LARGE_SOURCE);
}

/**
 * The benchmark's upstream: a fixed image-sized body for every path, `/health` for the
 * gateway's checks, and any path naming `bench-large.bin` (plain or base64) streaming 64 MiB in
 * 64 KiB chunks with back-pressure.
 */
export async function startBenchBackend(port = 0): Promise<{ server: Server; url: string }> {
  const image = Buffer.alloc(IMAGE_BYTES, 0x5a);
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const server = createServer((req, res) => {
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    if (wantsLarge(req.url ?? '')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(LARGE_BYTES) });
      let left = LARGE_BYTES;
      const write = () => {
        while (left > 0) {
          left -= chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      write();
      return;
    }
    res.writeHead(200, {
      'content-type': 'image/jpeg',
      'content-length': String(IMAGE_BYTES),
      'cache-control': 'public, max-age=31536000',
      etag: '"bench"',
    });
    res.end(image);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
