import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardingContext } from './proxy-headers';

const ctx: ForwardingContext = { requestId: 'req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', peerAddress: '203.0.113.7', clientIp: '203.0.113.7', peerTrusted: false, protocol: 'http' };

describe('upstreamRequestHeaders', () => {
  it('removes hop-by-hop headers, those named by Connection, and the gateway credentials', () => {
    const out = upstreamRequestHeaders(
      {
        connection: 'keep-alive, X-Hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        'proxy-authorization': 'Basic x',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        trailer: 'x-t',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'x-api-key': 'igw_key',
        authorization: 'Bearer igw_key',
        cookie: 'a=b',
        host: 'gateway.example',
        expect: '100-continue',
        accept: 'image/webp',
        'if-none-match': '"v1"',
        'content-length': '10',
      },
      ctx,
    );
    expect(out).toEqual({
      accept: 'image/webp',
      'if-none-match': '"v1"',
      'content-length': '10',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'gateway.example',
      'x-real-ip': '203.0.113.7',
      'x-request-id': 'req-1',
      traceparent: ctx.traceparent,
    });
  });

  it('replaces every client-address header a client could forge with what the gateway resolved', () => {
    const forged = {
      'x-real-ip': '10.0.0.1',
      'true-client-ip': '10.0.0.2',
      'cf-connecting-ip': '10.0.0.3',
      'x-client-ip': '10.0.0.4',
      'x-cluster-client-ip': '10.0.0.5',
      'fastly-client-ip': '10.0.0.6',
    };
    const out = upstreamRequestHeaders(forged, { ...ctx, peerAddress: '10.9.9.9', peerTrusted: true, clientIp: '198.51.100.4' });
    expect(out['x-real-ip']).toBe('198.51.100.4');
    for (const name of Object.keys(forged).filter((n) => n !== 'x-real-ip')) expect(out[name]).toBeUndefined();
    expect(JSON.stringify(out)).not.toMatch(/10\.0\.0\./);
  });

  it('replaces forwarding headers from an untrusted peer and extends those of a trusted proxy', () => {
    const incoming = { host: 'gw.internal', 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'img.example.com' };
    expect(upstreamRequestHeaders(incoming, ctx)).toMatchObject({ 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'gw.internal' });
    expect(upstreamRequestHeaders(incoming, { ...ctx, peerAddress: '10.0.0.2', peerTrusted: true })).toMatchObject({
      'x-forwarded-for': '198.51.100.1, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'img.example.com',
    });
  });

  it('never forwards an incoming request id or traceparent in place of the gateway ones, and adds extras last', () => {
    const out = upstreamRequestHeaders({ 'x-request-id': 'forged', traceparent: 'forged', authorization: 'Bearer tenant' }, { ...ctx, extra: { Authorization: 'Bearer imgproxy-secret' } });
    expect(out['x-request-id']).toBe('req-1');
    expect(out.traceparent).toBe(ctx.traceparent);
    expect(out.authorization).toBe('Bearer imgproxy-secret');
  });
});

describe('downstreamResponseHeaders', () => {
  it('keeps end-to-end headers and drops hop-by-hop ones and the backend request id', () => {
    const out = downstreamResponseHeaders({
      'content-type': 'image/png',
      'content-length': '5',
      'cache-control': 'max-age=60',
      etag: '"e"',
      'last-modified': 'Wed, 21 Oct 2026 07:28:00 GMT',
      vary: 'Accept',
      'content-disposition': 'inline',
      expires: 'Thu, 01 Dec 2027 16:00:00 GMT',
      'content-encoding': 'identity',
      connection: 'close, X-Secret-Hop',
      'x-secret-hop': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'proxy-authenticate': 'Basic',
      'x-request-id': 'backend-id',
    });
    expect(Object.keys(out).sort()).toEqual(
      ['cache-control', 'content-disposition', 'content-encoding', 'content-length', 'content-type', 'etag', 'expires', 'last-modified', 'vary', 'x-content-type-options'].sort(),
    );
  });

  it('drops the backend’s cookies and always forbids type sniffing', () => {
    const out = downstreamResponseHeaders({ 'content-type': 'image/png', 'set-cookie': ['a=1', 'b=2'], 'x-content-type-options': 'whatever' });
    expect(out['set-cookie']).toBeUndefined();
    expect(out['x-content-type-options']).toBe('nosniff');
  });
});
