import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { GatewayException } from '../../common/errors/gateway.exception';
import type { CacheFill } from './cache-lookup';

/** What an upstream client answers: undici's `request()` result has this shape. */
export interface UpstreamAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  body: Readable;
}

/**
 * Feeds an upstream answer into a fill with backpressure: the body pauses when the fill asks,
 * stops when the fill no longer wants it (or its signal aborts), and a body error fails the fill
 * with the proxy's own codes (504 for a body timeout, else 502). Resolves when the body is done.
 */
export function feedFill(fill: CacheFill, answer: UpstreamAnswer): Promise<void> {
  const { body } = answer;
  if (!fill.response(answer.statusCode, answer.headers as IncomingHttpHeaders)) {
    discard(body);
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      discard(body);
      resolve();
    };
    if (fill.signal.aborted) return stop();
    fill.signal.addEventListener('abort', stop, { once: true });
    body.on('data', (chunk: Buffer) => {
      if (fill.chunk(chunk)) return;
      if (fill.signal.aborted) return;
      body.pause();
      fill.onDrain(() => body.resume());
    });
    body.once('end', () => {
      fill.signal.removeEventListener('abort', stop);
      fill.end();
      resolve();
    });
    body.once('error', (error: Error & { code?: string }) => {
      fill.signal.removeEventListener('abort', stop);
      fill.fail(new GatewayException(error.code === 'UND_ERR_BODY_TIMEOUT' ? 'gateway_timeout' : 'bad_gateway'));
      resolve();
    });
  });
}

/** Destroys a body nobody reads; undici reports that as an abort error, which is expected here. */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
