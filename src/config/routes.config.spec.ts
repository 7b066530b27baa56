import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { RouteConfig, UpstreamConfig, headerSetProblems, routeProblems, staticPrefixOf } from './routes.config';

const route = (plain: Record<string, unknown>) => plainToInstance(RouteConfig, { name: 'r', path: '/api/*', upstream: 'users', ...plain });
const upstreams = { users: plainToInstance(UpstreamConfig, { backends: [{ name: 'u1', url: 'http://127.0.0.1:1' }] }) };

describe('routeProblems', () => {
  it('accepts a valid table', () => {
    expect(routeProblems([route({ stripPrefix: '/api' })], upstreams, false)).toEqual([]);
  });

  it('names every cross-key problem with its key', () => {
    const problems = routeProblems(
      [route({ upstream: 'nope' }), route({ name: 'proxy' }), route({ name: 'b', stripPrefix: '/other' }), route({ name: 'c', auth: 'jwt', path: '/c' }), route({ name: 'd', path: '/d/*/x' })],
      upstreams,
      false,
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'routes[0].upstream: no upstream named "nope"',
        'routes[1].name: "proxy" is taken by another route',
        expect.stringMatching(/^routes\[2\]\.stripPrefix: "\/other" is not a prefix/),
        'routes[3].auth: jwt needs auth.jwt to be configured',
        'routes[4].path: Wildcard must be the last character in the route',
      ]),
    );
  });

  it('refuses routes that take over the image paths, and upstreams without exactly one source of backends', () => {
    expect(routeProblems([route({ path: '/i/*' })], upstreams, false)).toEqual(['routes[0].path: /i/* is an image route']);
    const both = plainToInstance(UpstreamConfig, { backends: [{ name: 'a', url: 'http://x' }], discovery: { dns: 'x.internal', port: 80 } });
    const neither = plainToInstance(UpstreamConfig, {});
    expect(routeProblems([], { both, neither }, false)).toEqual([
      'upstreams.both: needs exactly one of backends or discovery',
      'upstreams.neither: needs exactly one of backends or discovery',
    ]);
  });

  it('keeps the imgproxy upstream to its pool settings', () => {
    const imgproxy = plainToInstance(UpstreamConfig, { backends: [{ name: 'a', url: 'http://x' }] });
    expect(routeProblems([], { imgproxy }, false)[0]).toMatch(/^upstreams\.imgproxy: its backends come from BACKENDS/);
  });
});

describe('staticPrefixOf', () => {
  it('stops at the first parameter or wildcard', () => {
    expect(staticPrefixOf('/api/users/:id')).toBe('/api/users/');
    expect(staticPrefixOf('/api/*')).toBe('/api/');
    expect(staticPrefixOf('/health')).toBe('/health');
  });
});

describe('headerSetProblems', () => {
  it('accepts header names with string or number values', () => {
    expect(headerSetProblems({ 'X-Frame-Options': 'DENY', 'X-Count': 5, Host: 'users.internal', 'X-Empty': '' })).toEqual([]);
  });

  it('refuses what the request path could not write: bad names, control characters, framing headers', () => {
    expect(headerSetProblems({ 'Bad Name': 'x', 'X-A': 'a\r\nInjected: b', 'X-B': { nested: true }, 'Content-Length': '1', Connection: 'close' })).toEqual([
      '"Bad Name" is not a header name',
      'the value of "X-A" holds a line break or another control character',
      'the value of "X-B" must be a string',
      '"Content-Length" frames the message or the connection and cannot be set',
      '"Connection" frames the message or the connection and cannot be set',
    ]);
    expect(headerSetProblems(['X-A'])).toEqual(['must be a mapping of header name to value']);
  });

  it('is what validation says of a route’s header rules', () => {
    const bad = route({ headers: { response: { set: { 'Bad Name': 'x' } } } });
    expect(JSON.stringify(validateSync(bad))).toContain('is not a header name');
  });
});
