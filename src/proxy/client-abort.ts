import { EventEmitter } from 'node:events';

/**
 * The abort signal of one proxied request: emits `abort` when the client went away. undici takes
 * an EventEmitter as a request's signal as well as an AbortSignal, and an AbortController with its
 * listener costs about 5 µs per request on these machines against 0.1 µs for this.
 */
export class ClientAbort extends EventEmitter {
  aborted = false;
  reason: Error | undefined = undefined;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = new Error('the client closed the connection');
    this.emit('abort');
  }
}
