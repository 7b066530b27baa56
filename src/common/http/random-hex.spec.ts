import { RandomHexPool } from './random-hex';

describe('RandomHexPool', () => {
  it('hands out distinct lowercase hex ids of the asked length, across refills', () => {
    const pool = new RandomHexPool(64);
    const ids = Array.from({ length: 100 }, () => pool.next(8));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(pool.next(16)).toMatch(/^[0-9a-f]{32}$/);
  });
});
