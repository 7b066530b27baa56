import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { PassThrough } from 'node:stream';
import { GatewayException } from '../common/errors/gateway.exception';
import type { ResponseFill } from './response-fill';
import { feedFill } from './feed-fill';

/** Records what a fill is fed, and pauses when told to. */
class RecordingFill implements ResponseFill {
  private readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  readonly chunks: string[] = [];
  status = 0;
  ended = false;
  failure: unknown;
  wanted = true;
  acceptChunks = Infinity;
  private drain: (() => void) | undefined;

  response(statusCode: number, _headers: IncomingHttpHeaders | OutgoingHttpHeaders): boolean {
    this.status = statusCode;
    return this.wanted;
  }
  chunk(chunk: Buffer): boolean {
    this.chunks.push(chunk.toString());
    return this.chunks.length < this.acceptChunks;
  }
  onDrain(listener: () => void): void {
    this.drain = listener;
  }
  end(): void {
    this.ended = true;
  }
  fail(error: unknown): void {
    this.failure = error;
  }
  release(): void {
    this.acceptChunks = Infinity;
    this.drain?.();
  }
  abort(): void {
    this.controller.abort();
  }
}

describe('feedFill', () => {
  it('feeds the head, the chunks and the end', async () => {
    const fill = new RecordingFill();
    const body = new PassThrough();
    const fed = feedFill(fill, { statusCode: 200, headers: {}, body });
    body.write('a');
    body.end('b');
    await fed;
    expect([fill.status, fill.chunks.join(''), fill.ended]).toEqual([200, 'ab', true]);
  });

  it('pauses the body while the fill asks, and resumes on drain', async () => {
    const fill = new RecordingFill();
    fill.acceptChunks = 1;
    const body = new PassThrough();
    const fed = feedFill(fill, { statusCode: 200, headers: {}, body });
    body.write('a');
    await new Promise((resolve) => setImmediate(resolve));
    expect(body.isPaused()).toBe(true);
    body.write('b');
    await new Promise((resolve) => setImmediate(resolve));
    expect(fill.chunks).toEqual(['a']);
    fill.release();
    body.end();
    await fed;
    expect([fill.chunks, fill.ended]).toEqual([['a', 'b'], true]);
  });

  it('drops the body when the fill does not want it, or once its signal aborts', async () => {
    const unwanted = new RecordingFill();
    unwanted.wanted = false;
    const first = new PassThrough();
    const dropped = feedFill(unwanted, { statusCode: 200, headers: {}, body: first });
    first.write('a');
    await dropped;
    expect([first.destroyed, unwanted.chunks]).toEqual([true, []]);

    const abandoned = new RecordingFill();
    const second = new PassThrough();
    const fed = feedFill(abandoned, { statusCode: 200, headers: {}, body: second });
    abandoned.abort();
    await fed;
    expect([second.destroyed, abandoned.ended]).toEqual([true, false]);
  });

  it('hands the head over with the first body byte, so a body failing before it fails the fill cleanly', async () => {
    const fill = new RecordingFill();
    const body = new PassThrough();
    const fed = feedFill(fill, { statusCode: 200, headers: {}, body });
    await new Promise((resolve) => setImmediate(resolve));
    expect(fill.status).toBe(0);
    body.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    await fed;
    expect([fill.status, (fill.failure as GatewayException).code]).toEqual([0, 'bad_gateway']);

    const empty = new RecordingFill();
    const none = new PassThrough();
    const ended = feedFill(empty, { statusCode: 204, headers: {}, body: none });
    none.end();
    await ended;
    expect([empty.status, empty.ended]).toEqual([204, true]);
  });

  it('fails the fill with the proxy’s codes when the body fails', async () => {
    for (const [code, expected] of [
      ['UND_ERR_BODY_TIMEOUT', 'gateway_timeout'],
      ['ECONNRESET', 'bad_gateway'],
    ]) {
      const fill = new RecordingFill();
      const body = new PassThrough();
      const fed = feedFill(fill, { statusCode: 200, headers: {}, body });
      body.destroy(Object.assign(new Error('body failed'), { code }));
      await fed;
      expect((fill.failure as GatewayException).code).toBe(expected);
    }
  });
});
