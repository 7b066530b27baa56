import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { GatewayException } from '../common/errors/gateway.exception';
import type { ResponseFill } from './response-fill';

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
 *
 * The head goes to the fill with the first body byte (or the end of an empty body), the proxy's
 * rule: a backend that sends headers and then fails before any byte leaves every waiter a clean
 * 502/504 instead of a status line followed by a cut connection.
 */
export function feedFill(fill: ResponseFill, answer: UpstreamAnswer): Promise<void> {
  const { body } = answer;
  return new Promise<void>((resolve) => {
    let started = false;
    let settled = false;
    const finish = (): void => {
      settled = true;
      fill.signal.removeEventListener('abort', stop);
      resolve();
    };
    const stop = (): void => {
      if (settled) return;
      discard(body);
      finish();
    };
    /** Hands the head over; false when the fill does not want the body (it has been dropped). */
    const start = (): boolean => {
      started = true;
      if (fill.response(answer.statusCode, answer.headers as IncomingHttpHeaders)) return true;
      stop();
      return false;
    };
    if (fill.signal.aborted) return stop();
    fill.signal.addEventListener('abort', stop, { once: true });
    body.on('data', (chunk: Buffer) => {
      if (settled || (!started && !start())) return;
      if (fill.chunk(chunk)) return;
      if (fill.signal.aborted) return;
      body.pause();
      fill.onDrain(() => body.resume());
    });
    body.once('end', () => {
      if (settled || (!started && !start())) return;
      fill.end();
      finish();
    });
    body.once('error', (error: Error & { code?: string }) => {
      if (settled) return;
      fill.fail(new GatewayException(error.code === 'UND_ERR_BODY_TIMEOUT' ? 'gateway_timeout' : 'bad_gateway'));
      finish();
    });
  });
}

/** Destroys a body nobody reads; undici reports that as an abort error, which is expected here. */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
