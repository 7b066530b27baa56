/**
 * A FIFO with a hard capacity that refuses (drops) the newest item when full, so memory stays
 * bounded whatever the database does, and the oldest entries — the ones already waiting
 * longest — are written first.
 */
export class BoundedQueue<T> {
  private items: T[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  get length(): number {
    return this.items.length;
  }

  /** False when the queue is full and the item was dropped. */
  push(item: T): boolean {
    if (this.items.length >= this.capacity) return false;
    this.items.push(item);
    return true;
  }

  /** Removes and returns up to `max` of the oldest items. */
  take(max: number): T[] {
    if (max >= this.items.length) {
      const all = this.items;
      this.items = [];
      return all;
    }
    return this.items.splice(0, max);
  }
}
