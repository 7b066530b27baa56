import { QUOTA_OVERRIDE_FIELDS, QuotaOverrides, RATE_LIMIT_OVERRIDE_FIELDS, RateLimitOverrides, applyOverridePatch, mergeLimits } from './effective-limits';

const plan = {
  perMinute: 1000,
  perHour: 10000,
  burst: null,
  monthlyRequests: 100000,
  dailyRequests: null,
  monthlyBandwidthBytes: 10 * 2 ** 30,
  storageBytes: 2 ** 30,
};

describe('mergeLimits', () => {
  it('is the plan when there are no overrides, with no burst or daily quota when the plan has none', () => {
    expect(mergeLimits(plan)).toEqual({
      perMinute: 1000,
      perHour: 10000,
      monthlyRequests: 100000,
      monthlyBandwidthBytes: 10 * 2 ** 30,
      storageBytes: 2 ** 30,
    });
  });

  it('takes each override over the plan, field by field', () => {
    expect(mergeLimits(plan, { perMinute: 50 }, { dailyRequests: 500, storageBytes: 1 })).toEqual({
      perMinute: 50,
      perHour: 10000,
      monthlyRequests: 100000,
      dailyRequests: 500,
      monthlyBandwidthBytes: 10 * 2 ** 30,
      storageBytes: 1,
    });
  });

  it('keeps the plan burst and daily quota', () => {
    const limits = mergeLimits({ ...plan, burst: 20, dailyRequests: 3000 }, { perHour: 7 });
    expect(limits).toMatchObject({ burst: 20, dailyRequests: 3000, perHour: 7, perMinute: 1000 });
  });
});

describe('applyOverridePatch', () => {
  const current: RateLimitOverrides = { perMinute: 10, perHour: 100 };

  it('keeps the stored overrides when the patch leaves them out', () => {
    expect(applyOverridePatch(current, undefined, RATE_LIMIT_OVERRIDE_FIELDS)).toEqual(current);
    expect(applyOverridePatch(current, {}, RATE_LIMIT_OVERRIDE_FIELDS)).toEqual(current);
  });

  it('sets numbers and clears fields given as null', () => {
    expect(applyOverridePatch(current, { perMinute: 5, perHour: null }, RATE_LIMIT_OVERRIDE_FIELDS)).toEqual({ perMinute: 5 });
  });

  it('clears everything when the whole object is null', () => {
    expect(applyOverridePatch(current, null, RATE_LIMIT_OVERRIDE_FIELDS)).toEqual({});
  });

  it('ignores fields it does not know', () => {
    const quotas: QuotaOverrides = {};
    const patch = { storageBytes: 9, bogus: 1 } as unknown as QuotaOverrides;
    expect(applyOverridePatch(quotas, patch, QUOTA_OVERRIDE_FIELDS)).toEqual({ storageBytes: 9 });
  });
});
