import { MAX_JSON_DEPTH, jsonNestingExceeds } from './json-body';

const nested = (levels: number, open = '{"a":', close = '}') => open.repeat(levels) + '1' + close.repeat(levels);

describe('jsonNestingExceeds', () => {
  it('passes the API’s own payloads and anything up to the limit', () => {
    expect(jsonNestingExceeds('{"entries":[{"cidr":"10.0.0.0/8"}]}')).toBe(false);
    expect(jsonNestingExceeds(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonNestingExceeds('[]'.repeat(10_000))).toBe(false);
  });

  it('refuses objects and arrays nested deeper than the limit', () => {
    expect(jsonNestingExceeds(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(jsonNestingExceeds('['.repeat(5000) + ']'.repeat(5000))).toBe(true);
    expect(jsonNestingExceeds(nested(3), 2)).toBe(true);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(jsonNestingExceeds(JSON.stringify({ a: '{'.repeat(100) }))).toBe(false);
    expect(jsonNestingExceeds(JSON.stringify({ a: '\\"[[[[' + '['.repeat(100) }))).toBe(false);
  });
});
