import { isConditional, notModified, validatorsOf } from './conditional';

describe('conditional requests against a stored response', () => {
  const validators = validatorsOf('"v1"', 'Sun, 01 Mar 2026 12:00:00 GMT');

  it('matches If-None-Match weakly, in a list, and * always', () => {
    expect(notModified({ 'if-none-match': '"v1"' }, validators)).toBe(true);
    expect(notModified({ 'if-none-match': 'W/"v1"' }, validators)).toBe(true);
    expect(notModified({ 'if-none-match': '"v0", "v1"' }, validators)).toBe(true);
    expect(notModified({ 'if-none-match': '"v2"' }, validators)).toBe(false);
    expect(notModified({ 'if-none-match': '*' }, validatorsOf(undefined, undefined))).toBe(true);
  });

  it('compares If-Modified-Since with Last-Modified', () => {
    expect(notModified({ 'if-modified-since': 'Sun, 01 Mar 2026 12:00:00 GMT' }, validators)).toBe(true);
    expect(notModified({ 'if-modified-since': 'Mon, 02 Mar 2026 00:00:00 GMT' }, validators)).toBe(true);
    expect(notModified({ 'if-modified-since': 'Sat, 28 Feb 2026 00:00:00 GMT' }, validators)).toBe(false);
    expect(notModified({ 'if-modified-since': 'yesterday' }, validators)).toBe(false);
    expect(notModified({ 'if-modified-since': 'Mon, 02 Mar 2026 00:00:00 GMT' }, validatorsOf('"v1"', undefined))).toBe(false);
  });

  it('lets If-None-Match decide when both are sent', () => {
    expect(notModified({ 'if-none-match': '"v2"', 'if-modified-since': 'Mon, 02 Mar 2026 00:00:00 GMT' }, validators)).toBe(false);
  });

  it('knows a conditional request when it sees one', () => {
    expect(isConditional({ 'if-none-match': '"v1"' })).toBe(true);
    expect(isConditional({ 'if-modified-since': 'x' })).toBe(true);
    expect(isConditional({ accept: 'image/webp' })).toBe(false);
  });
});
