import { normalizeCidr } from './cidr-normalize';

describe('normalizeCidr', () => {
  it.each([
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['192.168.1.7', '192.168.1.7/32'],
    [' 203.0.113.0/24 ', '203.0.113.0/24'],
    ['2001:db8::1/32', '2001:db8::/32'],
    ['2001:DB8::1', '2001:db8::1/128'],
    ['::ffff:10.0.0.1', '10.0.0.1/32'],
    ['::ffff:10.9.0.0/104', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeCidr(input)).toBe(expected);
  });

  it.each(['', '10.0.0.0/33', '300.1.1.1', 'example.com', '10.0.0.0/-1', '2001:db8::/129'])('refuses %p', (input) => {
    expect(normalizeCidr(input)).toBeUndefined();
  });
});
