import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ByteCounter } from './byte-counter';

async function drain(counter: ByteCounter, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), counter, async function* (source) {
    for await (const chunk of source) out.push(chunk as Buffer);
  });
  return Buffer.concat(out);
}

describe('ByteCounter', () => {
  it('passes every byte through and reports the running total', async () => {
    const totals: number[] = [];
    const counter = new ByteCounter((n) => totals.push(n));
    const out = await drain(counter, [Buffer.from('abc'), Buffer.from('defgh')]);
    expect(out.toString()).toBe('abcdefgh');
    expect(totals).toEqual([3, 8]);
    expect(counter.bytes).toBe(8);
  });

  it('fails with the given error once the limit is passed, having counted what came', async () => {
    let total = 0;
    const counter = new ByteCounter((n) => (total = n), 4, () => new Error('too large'));
    await expect(drain(counter, [Buffer.from('abc'), Buffer.from('de')])).rejects.toThrow('too large');
    expect(total).toBe(5);
  });
});
