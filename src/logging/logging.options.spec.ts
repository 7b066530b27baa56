import type { IncomingMessage, ServerResponse } from 'node:http';
import { redactUrl, requestLogProps, serializeError } from './logging.options';

describe('redactUrl', () => {
  it('masks credential query parameters and keeps the rest', () => {
    expect(redactUrl('/i/x/plain/a.jpg?api_key=igw_abc_SECRET&w=1')).toBe('/i/x/plain/a.jpg?api_key=[Redacted]&w=1');
    expect(redactUrl('/x?w=1&token=abc&Access_Token=def#frag')).toBe('/x?w=1&token=[Redacted]&Access_Token=[Redacted]#frag');
    expect(redactUrl('/t/KeyId/signature/rs:fit:1/plain/a.jpg')).toBe('/t/KeyId/signature/rs:fit:1/plain/a.jpg');
  });
});

describe('requestLogProps', () => {
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

  it('gives the request-wide fields first and the outcome fields at the end, never the same key twice', () => {
    const req = { method: 'GET', url: '/i/x', gw: state } as unknown as IncomingMessage;
    const res = { writableFinished: true, statusCode: 200 } as ServerResponse;
    const start = requestLogProps(req, res);
    const end = requestLogProps(req, res);
    expect(start).toEqual({ requestId: 'r1', traceId: 't1', clientIp: '10.0.0.1' });
    expect(end).toMatchObject({ method: 'GET', routeName: 'proxy', status: 200, tenantId: 'tn', keyId: 'k', backend: 'b', bytesIn: 3, bytesOut: 4 });
    expect(Object.keys(start).filter((key) => key in end)).toEqual([]);
  });

  it('reports an aborted response as 499', () => {
    const req = { method: 'GET', url: '/i/x', gw: state } as unknown as IncomingMessage;
    const res = { writableFinished: false, statusCode: 200 } as ServerResponse;
    requestLogProps(req, res);
    expect(requestLogProps(req, res)).toMatchObject({ status: 499, aborted: true });
  });
});

describe('serializeError', () => {
  it('drops the useless stack of pino-http’s invented 5xx error but keeps real stacks', () => {
    expect(serializeError(new Error('failed with status code 503')).stack).toBeUndefined();
    expect(serializeError(new Error('connect ECONNREFUSED')).stack).toEqual(expect.stringContaining('ECONNREFUSED'));
  });
});
