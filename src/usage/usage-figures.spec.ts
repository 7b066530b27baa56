import { UsageFigures } from './usage-figures';

describe('UsageFigures', () => {
  it('knows nothing of a month it never saw', () => {
    expect(new UsageFigures().current('t', '2026-11-22')).toBeUndefined();
  });

  it("adds this instance's unsynced counts to the shared figures until they are synced", () => {
    const figures = new UsageFigures();
    figures.observe('t', '2026-11-22', 'tok', 10, 4, 1000);
    figures.addUnsynced('t', '2026-11-22', 2, 50);
    expect(figures.current('t', '2026-11-22')).toEqual({ requests: 12, dayRequests: 6, bytes: 1050, token: 'tok', observed: true });
    // A fresh reply includes what a batch just applied.
    figures.synced('t', '2026-11-22', 1, 50);
    figures.observe('t', '2026-11-22', 'tok', 11, 5, 1050);
    expect(figures.current('t', '2026-11-22')).toMatchObject({ requests: 12, dayRequests: 6, bytes: 1050 });
    expect(figures.unsynced('t', '2026-11-22')).toEqual({ requests: 1, dayRequests: 1, bytes: 0 });
  });

  it("starts a new day's count while the month's goes on, and a new month from nothing", () => {
    const figures = new UsageFigures();
    figures.observe('t', '2026-11-22', 'tok', 10, 4, 0);
    figures.addUnsynced('t', '2026-11-23', 1, 0);
    expect(figures.current('t', '2026-11-23')).toMatchObject({ requests: 11, dayRequests: 1 });
    // A late count of yesterday leaves today's figure alone.
    figures.addUnsynced('t', '2026-11-22', 1, 0);
    expect(figures.current('t', '2026-11-23')).toMatchObject({ requests: 12, dayRequests: 1 });
    expect(figures.current('t', '2026-12-01')).toBeUndefined();
    figures.addUnsynced('t', '2026-12-01', 1, 0);
    expect(figures.current('t', '2026-12-01')).toEqual({ requests: 1, dayRequests: 1, bytes: 0, token: '', observed: false });
  });
});
