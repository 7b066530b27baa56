import { clientErrorRefusal, requestLineOf } from './client-error';

const allowFor = (path: string) => (path.startsWith('/health') ? ['GET', 'HEAD'] : []);

describe('clientErrorRefusal', () => {
  it('maps Node parser errors onto catalogue codes', () => {
    expect(clientErrorRefusal({ code: 'ERR_HTTP_REQUEST_TIMEOUT' }, allowFor)?.code).toBe('request_timeout');
    expect(clientErrorRefusal({ code: 'HPE_HEADER_OVERFLOW' }, allowFor)?.getStatus()).toBe(431);
    expect(clientErrorRefusal({ code: 'HPE_INVALID_CONSTANT' }, allowFor)?.code).toBe('validation_failed');
    expect(clientErrorRefusal({}, allowFor)?.getStatus()).toBe(400);
  });

  it('answers an unknown method with 405 and the Allow of the path in the request line', () => {
    const refusal = clientErrorRefusal({ code: 'HPE_INVALID_METHOD', rawPacket: Buffer.from('FOO /health/live HTTP/1.1\r\nHost: x\r\n\r\n') }, allowFor);
    expect(refusal?.getStatus()).toBe(405);
    expect(refusal?.headers).toMatchObject({ allow: 'GET, HEAD' });
    expect(clientErrorRefusal({ code: 'HPE_INVALID_METHOD', rawPacket: Buffer.from('GARBAGE\r\n\r\n') }, allowFor)?.getStatus()).toBe(400);
    expect(clientErrorRefusal({ code: 'HPE_INVALID_METHOD' }, allowFor)?.getStatus()).toBe(400);
  });

  it('has nothing to answer on a reset connection', () => {
    expect(clientErrorRefusal({ code: 'ECONNRESET' }, allowFor)).toBeUndefined();
  });
});

describe('requestLineOf', () => {
  it('reads method and origin-form path, nothing else', () => {
    expect(requestLineOf(Buffer.from('PROPFIND /a/b?c=1 HTTP/1.1\r\n'))).toEqual({ method: 'PROPFIND', path: '/a/b?c=1' });
    expect(requestLineOf(Buffer.from('GARBAGE\r\n\r\n'))).toBeUndefined();
    expect(requestLineOf(undefined)).toBeUndefined();
  });
});
