import { goAtoi, goParseBool, goParseFloat, goParseUint, isGoRawUrlBase64 } from './go-strconv';

/** Expected values are what Go's strconv answers for the same input. */
describe('Go strconv, as imgproxy parses option arguments', () => {
  it.each([
    ['0', 0n],
    ['42', 42n],
    ['+10', 10n],
    ['-5', -5n],
    ['-0', 0n],
    ['007', 7n],
    ['9223372036854775807', 9223372036854775807n],
    ['-9223372036854775808', -9223372036854775808n],
  ])('Atoi(%j) = %s', (text, value) => {
    expect(goAtoi(text)).toBe(value);
  });

  it.each(['', '+', '-', '1.5', '1e3', ' 1', '1 ', '0x10', '1_000', 'abc', '9223372036854775808', '٣'])('Atoi(%j) is an error', (text) => {
    expect(goAtoi(text)).toBeUndefined();
  });

  it.each([
    ['255', 255n],
    ['0', 0n],
  ])('ParseUint(%j, 10, 8) = %s', (text, value) => {
    expect(goParseUint(text, 8)).toBe(value);
  });

  it.each(['256', '+1', '-1', '', '1.0'])('ParseUint(%j, 10, 8) is an error', (text) => {
    expect(goParseUint(text, 8)).toBeUndefined();
  });

  it.each([
    ['1', 1],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['5.', 5],
    ['-2.25', -2.25],
    ['+3', 3],
    ['1e3', 1000],
    ['1E-2', 0.01],
    ['1_000.5', 1000.5],
    ['0x1p-2', 0.25],
    ['0X1.8P1', 3],
    ['0x_1p0', 1],
    ['inf', Infinity],
    ['+Inf', Infinity],
    ['-infinity', -Infinity],
    ['1e-400', 0],
  ])('ParseFloat(%j) = %s', (text, value) => {
    expect(goParseFloat(text)).toBe(value);
  });

  it('ParseFloat("NaN") is NaN, in any case but without a sign', () => {
    expect(goParseFloat('NaN')).toBeNaN();
    expect(goParseFloat('nan')).toBeNaN();
    expect(goParseFloat('+nan')).toBeUndefined();
  });

  it.each(['', '.', 'e5', '1e', '1e+', '0x1', '0x', '1..2', '1_', '_1', '1__0', 'abc', 'infin', '1e400', ' 1', '1,5', '٣'])(
    'ParseFloat(%j) is an error',
    (text) => {
      expect(goParseFloat(text)).toBeUndefined();
    },
  );

  it('ParseFloat(s, 32) refuses what overflows a float32', () => {
    expect(goParseFloat('1e38', 32)).toBe(1e38);
    expect(goParseFloat('1e39', 32)).toBeUndefined();
    expect(goParseFloat('1e39', 64)).toBe(1e39);
  });

  it('ParseBool knows the twelve spellings and nothing else', () => {
    expect(['1', 't', 'T', 'TRUE', 'true', 'True'].map(goParseBool)).toEqual(Array(6).fill(true));
    expect(['0', 'f', 'F', 'FALSE', 'false', 'False'].map(goParseBool)).toEqual(Array(6).fill(false));
    expect(['yes', 'tRUE', '', '2'].map(goParseBool)).toEqual(Array(4).fill(undefined));
  });

  it('RawURLEncoding accepts unpadded URL-safe base64 only', () => {
    expect(['', 'YQ', 'YWI', 'YWJj', 'a-_b'].map(isGoRawUrlBase64)).toEqual([true, true, true, true, true]);
    expect(['YQ==', 'Y', 'a+/b', 'YW J'].map(isGoRawUrlBase64)).toEqual([false, false, false, false]);
  });
});
