import { Transform, type TransformCallback } from 'node:stream';

/**
 * Counts the bytes that pass (docs/rate-limits-and-quotas.md: bandwidth is counted on the streams, partial transfers
 * included) and, with a limit, stops a body that grows beyond it. `onBytes` sees every chunk,
 * so the count is right even when the transfer is cut half-way.
 */
export class ByteCounter extends Transform {
  bytes = 0;

  constructor(
    private readonly onBytes: (total: number) => void,
    private readonly limit = Infinity,
    private readonly onLimit?: () => Error,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    if (this.bytes > this.limit) {
      callback(this.onLimit?.() ?? new RangeError('body too large'));
      return;
    }
    callback(null, chunk);
  }
}
