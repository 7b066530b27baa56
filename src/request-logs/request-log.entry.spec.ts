import { loggablePath } from './request-log.entry';

describe('loggablePath', () => {
  it('drops the query string, where credentials would travel', () => {
    expect(loggablePath('/i/insecure/rs:fit:300/plain/local:///a.jpg?api_key=igw_abc_secret&x=1')).toBe('/i/insecure/rs:fit:300/plain/local:///a.jpg');
  });

  it('keeps a path without a query as it is and cuts overlong ones', () => {
    expect(loggablePath('/t/abc/sig/rs:fit:1/plain/x.png')).toBe('/t/abc/sig/rs:fit:1/plain/x.png');
    expect(loggablePath('/' + 'a'.repeat(5000))).toHaveLength(2048);
  });
});

describe('loggablePath and credentials', () => {
  it('masks a path segment that holds an API key', () => {
    expect(loggablePath('/i/insecure/plain/local:///igw_AbCdEfGh1234_0123456789abcdefABCDEF0123456789.png?x=1')).toBe('/i/insecure/plain/local:///[Redacted]');
  });
});
