import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * What a fetch feeds the cache: the response head, the body chunks as they arrive, then the end
 * or the failure. The cache writes every waiting client's answer from it, the leader's included,
 * each at its own pace.
 */
export interface ResponseFill {
  /** Aborted when nobody wants the body any more (every client left and nothing is to be stored): cancel upstream. */
  readonly signal: AbortSignal;
  /** The backend's status and headers. False: the body is not wanted (stop feeding; later calls are ignored). */
  response(statusCode: number, headers: IncomingHttpHeaders | OutgoingHttpHeaders): boolean;
  /** One body chunk (kept by reference, never modified). False: pause until `onDrain` calls back. */
  chunk(chunk: Buffer): boolean;
  /** Called once when feeding may resume after `chunk` returned false. */
  onDrain(listener: () => void): void;
  /** The body is complete. */
  end(): void;
  /** The fetch failed: every waiter fails with this error, nothing is stored. */
  fail(error: unknown): void;
}
