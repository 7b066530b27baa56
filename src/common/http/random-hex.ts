import { randomFillSync } from 'node:crypto';

/**
 * Random ids (trace and span ids) drawn from a pre-filled pool of CSPRNG bytes: one
 * `randomFillSync` per 4 KiB instead of one `randomBytes` call (a buffer allocation and a trip
 * into OpenSSL) per id. Node's own `randomUUID` pools its entropy the same way.
 */
export class RandomHexPool {
  private readonly pool: Buffer;
  private offset: number;

  constructor(size = 4096) {
    this.pool = Buffer.allocUnsafeSlow(size);
    this.offset = size;
  }

  /** `bytes` random bytes as lowercase hex (2 × bytes characters). */
  next(bytes: number): string {
    if (this.offset + bytes > this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const start = this.offset;
    this.offset += bytes;
    return this.pool.toString('hex', start, start + bytes);
  }
}
