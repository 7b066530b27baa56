import { Writable } from 'node:stream';
import pino from 'pino';
import type { FinishedRequest } from '../gateway/request-observer';
import { REDACTED_PATHS, RequestLineLogger, redactUrl, requestLineLevel } from './logging.options';

describe('redactUrl', () => {
  it('masks credential query parameters and keeps the rest', () => {
    expect(redactUrl('/i/x/plain/a.jpg?api_key=igw_abc_SECRET&w=1')).toBe('/i/x/plain/a.jpg?api_key=[Redacted]&w=1');
    expect(redactUrl('/x?w=1&token=abc&Access_Token=def#frag')).toBe('/x?w=1&token=[Redacted]&Access_Token=[Redacted]#frag');
    expect(redactUrl('/t/KeyId/signature/rs:fit:1/plain/a.jpg')).toBe('/t/KeyId/signature/rs:fit:1/plain/a.jpg');
  });
});

describe('requestLineLevel', () => {
  it('keeps probes and scrapes at debug, 5xx at error, the rest at info', () => {
    expect(requestLineLevel('/health/live', 200)).toBe('debug');
    expect(requestLineLevel('/metrics', 200)).toBe('debug');
    expect(requestLineLevel('/healthy-cat.jpg', 200)).toBe('info');
    expect(requestLineLevel('/i/x', 502)).toBe('error');
    expect(requestLineLevel('/i/x', 404)).toBe('info');
  });
});

describe('RequestLineLogger', () => {
  function capture(level: string) {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        callback();
      },
    });
    const root = pino({ level, redact: { paths: REDACTED_PATHS, censor: '[Redacted]' } }, stream);
    return { lines, logger: new RequestLineLogger(root) };
  }

  const state = {
    requestId: 'r1',
    clientIp: '10.0.0.1',
    startedAt: 0n,
    traceId: 't1',
    route: 'proxy',
    backend: 'b',
    bytesIn: 3,
    bytesOut: 4,
    auth: { tenantId: 'tn', keyId: 'k' },
  };
  const finished = (status: number, aborted = false, url = '/i/x?api_key=igw_SECRET') =>
    ({
      request: { method: 'GET', raw: { url } },
      state,
      routeTemplate: '/i/*',
      status,
      aborted,
      durationSeconds: 0.0421,
    }) as unknown as FinishedRequest;

  it('writes one line with the request fields, the masked URL and no header', () => {
    const { lines, logger } = capture('info');
    logger.requestFinished(finished(200));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({
      level: 30,
      time: expect.any(Number),
      pid: expect.any(Number),
      hostname: expect.any(String),
      req: { url: '/i/x?api_key=[Redacted]' },
      requestId: 'r1',
      traceId: 't1',
      clientIp: '10.0.0.1',
      method: 'GET',
      route: '/i/*',
      routeName: 'proxy',
      status: 200,
      tenantId: 'tn',
      keyId: 'k',
      backend: 'b',
      bytesIn: 3,
      bytesOut: 4,
      durationMs: 42,
      msg: 'request completed',
    });
  });

  it('says how the cache answered on a cached route', () => {
    const { lines, logger } = capture('info');
    for (const cacheStatus of ['HIT', 'MISS', 'BYPASS', undefined] as const) {
      logger.requestFinished({ ...finished(200), state: { ...state, cacheStatus } } as unknown as FinishedRequest);
    }
    expect(lines.map((line) => line.cache)).toEqual(['hit', 'miss', 'bypass', undefined]);
  });

  it('reports an aborted response as 499 and a 5xx at error', () => {
    const { lines, logger } = capture('info');
    logger.requestFinished(finished(499, true));
    logger.requestFinished(finished(502));
    expect(lines[0]).toMatchObject({ status: 499, aborted: true, level: 30 });
    expect(lines[1]).toMatchObject({ status: 502, level: 50, msg: 'request failed' });
  });

  it('writes nothing when the level hides the line', () => {
    const { lines, logger } = capture('warn');
    logger.requestFinished(finished(200));
    logger.requestFinished(finished(200, false, '/health/ready'));
    expect(lines).toHaveLength(0);
  });
});
