import { upstreamPathOf } from './upstream-path';

describe('upstreamPathOf', () => {
  it('keeps the raw bytes after the prefix, query included', () => {
    expect(upstreamPathOf('/i/insecure/rs:fit:300/plain/local:///a%20b/../c.jpg@png?v=1', '/i')).toBe('/insecure/rs:fit:300/plain/local:///a%20b/../c.jpg@png?v=1');
  });

  it('answers / for the bare prefix', () => {
    expect(upstreamPathOf('/i', '/i')).toBe('/');
    expect(upstreamPathOf('/i/', '/i')).toBe('/');
  });

  it('drops api_key wherever it stands in the query, and only it', () => {
    expect(upstreamPathOf('/i/x?api_key=igw_a_b', '/i')).toBe('/x');
    expect(upstreamPathOf('/i/x?a=1&api_key=igw_a_b&b=2', '/i')).toBe('/x?a=1&b=2');
    expect(upstreamPathOf('/i/x?my_api_key=1', '/i')).toBe('/x?my_api_key=1');
  });
});
