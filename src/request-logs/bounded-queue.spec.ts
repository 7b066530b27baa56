import { BoundedQueue } from './bounded-queue';

describe('BoundedQueue', () => {
  it('keeps the oldest items and refuses the newest when full', () => {
    const queue = new BoundedQueue<number>(3);
    expect([1, 2, 3, 4, 5].map((n) => queue.push(n))).toEqual([true, true, true, false, false]);
    expect(queue.length).toBe(3);
    expect(queue.take(10)).toEqual([1, 2, 3]);
    expect(queue.length).toBe(0);
  });

  it('hands out batches in arrival order and accepts again once drained', () => {
    const queue = new BoundedQueue<number>(4);
    for (const n of [1, 2, 3, 4]) queue.push(n);
    expect(queue.take(3)).toEqual([1, 2, 3]);
    expect(queue.push(5)).toBe(true);
    expect(queue.take(3)).toEqual([4, 5]);
    expect(queue.take(3)).toEqual([]);
  });

  it('refuses a capacity below one', () => {
    expect(() => new BoundedQueue(0)).toThrow(RangeError);
  });
});
