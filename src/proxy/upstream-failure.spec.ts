import { classifyUpstreamAnswer, classifyUpstreamError, isReplayable, retryAfterMs } from './upstream-failure';

describe('classifyUpstreamError', () => {
  it('calls connect and header timeouts timeouts', () => {
    expect(classifyUpstreamError({ code: 'UND_ERR_CONNECT_TIMEOUT' }, false)).toBe('timeout');
    expect(classifyUpstreamError({ code: 'UND_ERR_HEADERS_TIMEOUT' }, false)).toBe('timeout');
    expect(classifyUpstreamError({ name: 'TimeoutError' }, false)).toBe('timeout');
  });

  it('calls refused, reset and closed connections connect failures', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'ENOTFOUND', 'EHOSTUNREACH']) expect(classifyUpstreamError({ code }, false)).toBe('connect');
  });

  it('calls a reply that is not HTTP a protocol failure, not a connect failure', () => {
    expect(classifyUpstreamError({ name: 'HTTPParserError', message: 'Response does not match the HTTP/1.1 protocol (Invalid status code)' }, false)).toBe('protocol');
    expect(classifyUpstreamError({ code: 'HPE_INVALID_CONSTANT' }, false)).toBe('protocol');
    expect(classifyUpstreamError({ code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' }, false)).toBe('protocol');
  });

  it('blames nobody when the client went away', () => {
    expect(classifyUpstreamError({ code: 'UND_ERR_ABORTED' }, true)).toBe('aborted');
  });
});

describe('classifyUpstreamAnswer', () => {
  it('takes every answer, 5xx included, as the backend working, and a 429 as back-pressure', () => {
    expect([200, 304, 404, 500, 502, 503, 504].map(classifyUpstreamAnswer)).toEqual(Array(7).fill('answered'));
    expect(classifyUpstreamAnswer(429)).toBe('busy');
  });
});

describe('isReplayable', () => {
  it('replays GET and HEAD only', () => {
    expect(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'].filter(isReplayable)).toEqual(['GET', 'HEAD']);
  });
});

describe('retryAfterMs', () => {
  it('reads delta seconds and HTTP dates', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs('Wed, 21 Oct 2026 07:28:10 GMT', Date.parse('Wed, 21 Oct 2026 07:28:00 GMT'))).toBe(10_000);
    expect(retryAfterMs('Wed, 21 Oct 2026 07:28:00 GMT', Date.parse('Wed, 21 Oct 2026 07:29:00 GMT'))).toBe(0);
  });

  it('ignores absent or garbled values', () => {
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});
