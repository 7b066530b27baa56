import { parseCacheControl, responseFreshness } from './freshness';

const NOW = Date.parse('2026-03-01T12:00:00Z');

describe('response freshness', () => {
  it('parses the directives it acts on, ignoring others and case', () => {
    expect(parseCacheControl('Public, Max-Age=600, s-maxage="60", immutable')).toEqual({ noStore: false, noCache: false, private: false, maxAge: 600, sMaxAge: 60 });
    expect(parseCacheControl(['no-store', 'private'])).toMatchObject({ noStore: true, private: true });
    expect(parseCacheControl('max-age=soon').maxAge).toBe(0);
  });

  it.each([
    [{ 'cache-control': 'private, max-age=600' }, 'private'],
    [{ 'cache-control': 'no-store' }, 'no-store'],
    [{ 'cache-control': 'no-cache' }, 'no-cache'],
    [{ 'set-cookie': 'session=1' }, 'set-cookie'],
    [{ vary: '*' }, 'vary-any'],
  ])('never stores nor shares %j', (headers, reason) => {
    expect(responseFreshness(200, headers, 3600, NOW)).toMatchObject({ storable: false, shareable: false, reason });
  });

  it('prefers s-maxage over max-age, and caps both by the route TTL', () => {
    expect(responseFreshness(200, { 'cache-control': 'max-age=600, s-maxage=120' }, 3600, NOW)).toMatchObject({ storable: true, ttlSeconds: 120 });
    expect(responseFreshness(200, { 'cache-control': 'public, max-age=31536000' }, 3600, NOW).ttlSeconds).toBe(3600);
    expect(responseFreshness(200, { 'cache-control': 'max-age=600' }, 3600, NOW).ttlSeconds).toBe(600);
  });

  it('uses the route TTL when the response says nothing', () => {
    expect(responseFreshness(200, { 'content-type': 'image/webp' }, 900, NOW)).toMatchObject({ storable: true, ttlSeconds: 900 });
  });

  it('reads Expires against Date when there is no max-age; an invalid Expires is stale', () => {
    const headers = { date: 'Sun, 01 Mar 2026 12:00:00 GMT', expires: 'Sun, 01 Mar 2026 12:05:00 GMT' };
    expect(responseFreshness(200, headers, 3600, NOW).ttlSeconds).toBe(300);
    expect(responseFreshness(200, { expires: '0' }, 3600, NOW)).toMatchObject({ storable: false, reason: 'expired' });
  });

  it('stores only 200s; other shareable statuses still go to coalesced waiters', () => {
    for (const status of [301, 404, 500]) {
      expect(responseFreshness(status, { 'cache-control': 'max-age=60' }, 3600, NOW)).toMatchObject({ storable: false, shareable: true, reason: 'status' });
    }
  });

  it('does not store a response that is already stale (max-age=0)', () => {
    expect(responseFreshness(200, { 'cache-control': 'max-age=0' }, 3600, NOW)).toMatchObject({ storable: false, shareable: true, reason: 'expired' });
  });

  it('reports the Vary names', () => {
    expect(responseFreshness(200, { vary: 'Accept' }, 3600, NOW).varyNames).toEqual(['accept']);
  });
});
