import { UsageJournal, rowsOf } from './usage-journal';

describe('UsageJournal', () => {
  it('sums counts per day and tag, and hands them over as one batch per tenant', () => {
    const journal = new UsageJournal();
    journal.add('t1', '2026-11-22', 'tok', { requests: 1, bytesOut: 100 });
    journal.add('t1', '2026-11-22', 'tok', { requests: 1, bytesIn: 5, renders: 1 });
    journal.add('t1', '2026-11-22', '', { requests: 1 });
    journal.add('t2', '2026-11-21', 'x', { bytesOut: 7 });
    journal.add('t2', '2026-11-21', 'x', {});
    const batches = journal.take();
    expect(batches.map((b) => b.tenantId).sort()).toEqual(['t1', 't2']);
    const t1 = batches.find((b) => b.tenantId === 't1')!;
    expect(t1.entries).toEqual([
      { day: '2026-11-22', tag: 'tok', requests: 2, bytesIn: 5, bytesOut: 100, renders: 1 },
      { day: '2026-11-22', tag: '', requests: 1, bytesIn: 0, bytesOut: 0, renders: 0 },
    ]);
    expect(rowsOf(t1)).toEqual([{ day: '2026-11-22', requests: 3, bytesIn: 5, bytesOut: 100, renders: 1 }]);
  });

  it('retries a batch whose write failed with its id, keeping newer counts for the next one', () => {
    const journal = new UsageJournal();
    journal.add('t', '2026-11-22', '', { requests: 1 });
    const [first] = journal.take();
    journal.add('t', '2026-11-22', '', { requests: 5 });
    // The write failed: the same batch again, the 5 wait.
    const [retry] = journal.take();
    expect(retry).toBe(first);
    journal.finish(retry);
    const [next] = journal.take();
    expect(next.batchId).not.toBe(first.batchId);
    expect(rowsOf(next)[0].requests).toBe(5);
    journal.finish(next);
    expect(journal.empty).toBe(true);
    expect(journal.take()).toEqual([]);
  });

  it("drops a month's pending counts on reset, leaving other months and batches being written", () => {
    const journal = new UsageJournal();
    journal.add('t', '2026-10-31', '', { requests: 2 });
    journal.add('t', '2026-11-01', '', { requests: 3 });
    journal.dropMonth('t', '2026-11');
    expect(journal.take()[0].entries.map((e) => e.day)).toEqual(['2026-10-31']);
  });
});
