import { CidrMatcher, isValidCidr, normalizeAddress } from './cidr';
import { resolveClientIp } from './client-ip';

describe('CidrMatcher', () => {
  it('matches IPv4 and IPv6 ranges and bare addresses', () => {
    const m = new CidrMatcher(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7']);
    expect(m.matches('10.1.2.3')).toBe(true);
    expect(m.matches('11.1.2.3')).toBe(false);
    expect(m.matches('2001:db8::1')).toBe(true);
    expect(m.matches('2001:db9::1')).toBe(false);
    expect(m.matches('192.0.2.7')).toBe(true);
    expect(m.matches('192.0.2.8')).toBe(false);
  });

  it('treats IPv4-mapped IPv6 as IPv4, in addresses and in ranges', () => {
    expect(new CidrMatcher(['10.0.0.0/8']).matches('::ffff:10.9.9.9')).toBe(true);
    expect(new CidrMatcher(['::ffff:10.0.0.0/104']).matches('10.9.9.9')).toBe(true);
    expect(normalizeAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
  });

  it('never matches garbage and an empty list matches nothing', () => {
    expect(new CidrMatcher(['0.0.0.0/0']).matches('not-an-ip')).toBe(false);
    expect(new CidrMatcher([]).matches('1.2.3.4')).toBe(false);
  });

  it('refuses the non-canonical IPv4 spellings ipaddr.js would read as another network', () => {
    for (const text of ['010.0.0.1', '24', '127.1', '0x7f.1', '10.1/8', '10.0.0.0/08x', 'fe80::1%eth0', ' ']) {
      expect(isValidCidr(text)).toBe(false);
    }
    expect(new CidrMatcher(['10.0.0.0/8']).matches('012.0.0.1')).toBe(false);
  });

  it('refuses invalid ranges', () => {
    expect(isValidCidr('10.0.0.0/33')).toBe(false);
    expect(isValidCidr('300.1.1.1')).toBe(false);
    expect(isValidCidr('10.0.0.0/8')).toBe(true);
    expect(isValidCidr('::/0')).toBe(true);
    expect(() => new CidrMatcher(['nope'])).toThrow('invalid CIDR');
  });
});

describe('resolveClientIp', () => {
  const trusted = new CidrMatcher(['10.0.0.0/8']);

  it('ignores X-Forwarded-For when no proxy is trusted', () => {
    expect(resolveClientIp('203.0.113.9', '1.1.1.1', new CidrMatcher([]))).toBe('203.0.113.9');
  });

  it('ignores X-Forwarded-For from an untrusted socket', () => {
    expect(resolveClientIp('203.0.113.9', '1.1.1.1', trusted)).toBe('203.0.113.9');
  });

  it('takes the right-most untrusted hop behind trusted proxies', () => {
    expect(resolveClientIp('10.0.0.2', '6.6.6.6, 198.51.100.4, 10.0.0.9', trusted)).toBe('198.51.100.4');
  });

  it('folds mapped addresses and falls back to the socket on garbage', () => {
    expect(resolveClientIp('::ffff:10.0.0.2', '198.51.100.4', trusted)).toBe('198.51.100.4');
    expect(resolveClientIp('10.0.0.2', 'garbage', trusted)).toBe('10.0.0.2');
  });
});
