import { evaluateRequestQuotas, quotaFigure, storageFits } from './quota-evaluation';

const limits = { monthlyRequests: 25, dailyRequests: 10, monthlyBandwidthBytes: 1000 };
const usage = (over: Partial<{ requests: number; dayRequests: number; bytesIn: number; bytesOut: number }> = {}) => ({
  requests: 0,
  dayRequests: 0,
  bytesIn: 0,
  bytesOut: 0,
  ...over,
});

describe('evaluateRequestQuotas', () => {
  it('admits below every limit and counts this request in X-Quota-Remaining', () => {
    expect(evaluateRequestQuotas(limits, usage({ requests: 3, dayRequests: 3 }), 86_400)).toEqual({
      exceeded: undefined,
      headers: { 'x-quota-limit': 25, 'x-quota-remaining': 21, 'x-quota-reset': 86_400 },
    });
  });

  it('admits the last request of the month with 0 remaining, refuses the next', () => {
    expect(evaluateRequestQuotas({ ...limits, dailyRequests: undefined }, usage({ requests: 24 }), 5).headers['x-quota-remaining']).toBe(0);
    const refused = evaluateRequestQuotas({ ...limits, dailyRequests: undefined }, usage({ requests: 25 }), 5);
    expect(refused.exceeded).toBe('monthlyRequests');
    expect(refused.headers['x-quota-remaining']).toBe(0);
  });

  it('names the daily quota when only the day is used up, and ignores an absent daily quota', () => {
    expect(evaluateRequestQuotas(limits, usage({ requests: 12, dayRequests: 10 }), 5).exceeded).toBe('dailyRequests');
    expect(evaluateRequestQuotas({ ...limits, dailyRequests: undefined }, usage({ requests: 12, dayRequests: 10 }), 5).exceeded).toBeUndefined();
  });

  it('counts request and response bytes together against the bandwidth quota', () => {
    expect(evaluateRequestQuotas(limits, usage({ bytesIn: 400, bytesOut: 599 }), 5).exceeded).toBeUndefined();
    expect(evaluateRequestQuotas(limits, usage({ bytesIn: 400, bytesOut: 600 }), 5).exceeded).toBe('monthlyBandwidthBytes');
  });

  it('reports the monthly request quota first when several are used up', () => {
    expect(evaluateRequestQuotas(limits, usage({ requests: 25, dayRequests: 10, bytesOut: 5000 }), 5).exceeded).toBe('monthlyRequests');
  });
});

describe('quota figures and storage', () => {
  it('never reports a negative remaining figure', () => {
    expect(quotaFigure(10, 12)).toEqual({ limit: 10, used: 12, remaining: 0 });
  });

  it('counts reservations of uploads in progress', () => {
    expect(storageFits(100, 60, 30, 10)).toBe(true);
    expect(storageFits(100, 60, 30, 11)).toBe(false);
  });
});
