import { REDACTED, UrlRedactor } from './url-redaction';

const KEY = 'igw_AbCdEfGh1234_QUERYsecretQUERYsecretQUERYsecret12';
const HEX = '0f1e2d3c4b5a6978'.repeat(4);

describe('UrlRedactor', () => {
  const redactor = new UrlRedactor(['admin-token-S3CR3T-0123', 'short']);

  it('masks credential parameters by their decoded, case-folded name', () => {
    expect(redactor.redact(`/i/x?api%5Fkey=${KEY}&w=1`)).toBe(`/i/x?api%5Fkey=${REDACTED}&w=1`);
    expect(redactor.redact('/i/x?API_KEY=abc&Token=def&signing%5fkey=x')).toBe(`/i/x?API_KEY=${REDACTED}&Token=${REDACTED}&signing%5fkey=${REDACTED}`);
  });

  it('masks a key, a bearer credential or a hex key in any parameter, name or path segment', () => {
    expect(redactor.redact(`/i/x?x=${KEY}&w=1`)).toBe(`/i/x?x=${REDACTED}&w=1`);
    expect(redactor.redact(`/i/x?x=${encodeURIComponent(KEY).replace('_', '%5F')}`)).toBe(`/i/x?x=${REDACTED}`);
    expect(redactor.redact(`/i/x?${KEY}`)).toBe(`/i/x?${REDACTED}`);
    expect(redactor.redact('/i/x?auth2=Bearer%20abcdef')).toBe(`/i/x?auth2=${REDACTED}`);
    expect(redactor.redact(`/i/x?k2=${HEX}`)).toBe(`/i/x?k2=${REDACTED}`);
    expect(redactor.redact(`/i/insecure/plain/local:///${KEY}.png`)).toBe(`/i/insecure/plain/local:///${REDACTED}`);
    expect(redactor.redact(`/i/x#${KEY}`)).toBe(`/i/x#${REDACTED}`);
  });

  it('masks the gateway’s own secrets by value, encoded or not, but not short ones', () => {
    expect(redactor.redact('/admin/v1/x?q=admin-token-S3CR3T-0123')).toBe(`/admin/v1/x?q=${REDACTED}`);
    expect(redactor.redact('/x/ADMIN-TOKEN-S3CR3T-0123/y')).toBe(`/x/${REDACTED}/y`);
    expect(redactor.redact('/x?q=admin%2Dtoken%2DS3CR3T%2D0123')).toBe(`/x?q=${REDACTED}`);
    expect(redactor.redact('/x?q=short')).toBe('/x?q=short');
  });

  it('leaves ordinary URLs, signed-URL signatures and malformed escapes as they are', () => {
    for (const url of [
      '/t/AbCdEfGh1234/Xy0_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJK/rs:fit:300:200/plain/local:///cat.jpg',
      '/i/insecure/rs:fit:300/plain/local:///a%20b.jpg?w=1&v=2',
      '/x?q=%E9%ZZ',
      '/health/live',
    ]) {
      expect(redactor.redact(url)).toBe(url);
    }
  });

  it('checks a bare path segment by segment', () => {
    expect(redactor.path(`/i/insecure/plain/${KEY}`)).toBe(`/i/insecure/plain/${REDACTED}`);
    expect(redactor.path('/i/insecure/plain/cat.jpg')).toBe('/i/insecure/plain/cat.jpg');
  });
});
