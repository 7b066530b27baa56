import { LocalUsageCounterStore, baseFields, rowsFromFields } from './usage-counter.store';
import { usagePeriodOf } from './usage-period';

const period = usagePeriodOf(new Date('2026-11-22T10:00:00Z'));
const one = { requests: 1, bytesIn: 10, bytesOut: 100 };
const emptyBase = { requests: 0, bytesIn: 0, bytesOut: 0, days: {} };

describe('rowsFromFields', () => {
  it('groups pending hash fields by day and skips the batch id', () => {
    expect(rowsFromFields({ '#batch': 'b1', '2026-11-22:r': '3', '2026-11-22:bi': '30', '2026-11-22:bo': '300', '2026-11-21:r': '1' })).toEqual([
      { day: '2026-11-22', requests: 3, bytesIn: 30, bytesOut: 300 },
      { day: '2026-11-21', requests: 1, bytesIn: 0, bytesOut: 0 },
    ]);
  });

  it('turns a month base into hash fields', () => {
    expect(baseFields({ requests: 5, bytesIn: 1, bytesOut: 2, days: { '21': 2, '22': 3 } })).toEqual(['r', 5, 'bi', 1, 'bo', 2, 'r:21', 2, 'r:22', 3]);
  });
});

describe('LocalUsageCounterStore', () => {
  it('has no month view until seeded, and seeds from the base plus unflushed deltas', async () => {
    const store = new LocalUsageCounterStore();
    await store.add('t', period.day, one);
    expect(await store.readMonth('t', period)).toBeUndefined();
    const state = await store.seedState('t');
    expect(await store.seed('t', period, { requests: 7, bytesIn: 70, bytesOut: 700, days: { '22': 4 } }, state)).toBe('seeded');
    expect(await store.readMonth('t', period)).toMatchObject({ requests: 8, bytesIn: 80, bytesOut: 800, dayRequests: 5 });
    expect(await store.seed('t', period, emptyBase, await store.seedState('t'))).toBe('already');
  });

  it('refuses a seed when a flush moved deltas since the state was read', async () => {
    const store = new LocalUsageCounterStore();
    await store.add('t', period.day, one);
    const state = await store.seedState('t');
    await store.take('t');
    expect(await store.seed('t', period, emptyBase, state)).toBe('stale');
  });

  it('counts an inflight batch only when the caller says it is not committed yet', async () => {
    const store = new LocalUsageCounterStore();
    await store.add('t', period.day, one);
    const batch = await store.take('t');
    const state = await store.seedState('t');
    expect(state.inflightBatch).toBe(batch!.batchId);
    await store.seed('t', period, emptyBase, { gen: state.gen });
    expect((await store.readMonth('t', period))!.requests).toBe(0);

    const other = new LocalUsageCounterStore();
    await other.add('t', period.day, one);
    await other.take('t');
    await other.seed('t', period, emptyBase, await other.seedState('t'));
    expect((await other.readMonth('t', period))!.requests).toBe(1);
  });

  it('retries an unfinished batch with the same id, and forgets it once finished', async () => {
    const store = new LocalUsageCounterStore();
    await store.add('t', period.day, one);
    const first = await store.take('t');
    await store.add('t', period.day, one);
    const again = await store.take('t');
    expect(again).toEqual(first);
    await store.finish('t', first!.batchId);
    const next = await store.take('t');
    expect(next!.batchId).not.toBe(first!.batchId);
    expect(next!.rows).toEqual([{ day: period.day, ...one }]);
    await store.finish('t', next!.batchId);
    expect(await store.take('t')).toBeUndefined();
    expect(store.dirtyTenants()).toEqual([]);
  });

  it('increments a seeded view and pending together; a reset forgets the month', async () => {
    const store = new LocalUsageCounterStore();
    await store.seed('t', period, emptyBase, await store.seedState('t'));
    await store.add('t', period.day, one);
    await store.add('t', period.day, one);
    expect(await store.readMonth('t', period)).toMatchObject({ requests: 2, dayRequests: 2, bytesOut: 200 });
    await store.reset('t', period);
    expect(await store.readMonth('t', period)).toBeUndefined();
    expect(await store.take('t')).toBeUndefined();
  });
});
