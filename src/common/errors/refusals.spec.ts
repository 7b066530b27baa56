import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { ERROR_CATALOGUE, type ErrorCode } from './error-catalogue';
import { GatewayException, TENANT_AUTH_CHALLENGE } from './gateway.exception';
import { refusalHeaders, refusalResponse, writeRefusal, writeRefusalToSocket } from './refusal-writer';
import { ADMIN_AUTH_CHALLENGE, refusalForStatus, refusals } from './refusals';

describe('refusals', () => {
  it('builds every catalogue code with its status', () => {
    const built: GatewayException[] = [
      refusals.validationFailed(['a must be a string']),
      refusals.unauthorized(),
      refusals.methodNotAllowed(['GET']),
      refusals.rateLimited('ip', 3),
      refusals.quotaExceeded('monthlyRequests', { retryAfter: 60 }),
      refusals.noHealthyBackend(),
      refusals.unavailable(5),
      refusals.headersTooLarge(),
      refusals.requestTimeout(),
    ];
    for (const exception of built) expect(exception.getStatus()).toBe(ERROR_CATALOGUE[exception.code].status);
    for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) expect(refusalForStatus(code).code).toBe(code);
  });

  it('gives each status the headers a client acts on', () => {
    expect(refusals.unauthorized().headers).toEqual({ 'www-authenticate': TENANT_AUTH_CHALLENGE });
    expect(refusals.unauthorized('x', ADMIN_AUTH_CHALLENGE).headers).toEqual({ 'www-authenticate': 'Bearer realm="admin"' });
    expect(refusals.methodNotAllowed(['GET', 'HEAD']).headers).toEqual({ allow: 'GET, HEAD' });
    expect(refusals.rateLimited('tenant', 2.2, { 'x-ratelimit-limit': 10 })).toMatchObject({
      extras: { scope: 'tenant', retryAfter: 3 },
      headers: { 'x-ratelimit-limit': 10, 'retry-after': 3 },
    });
    expect(refusals.unavailable(0).headers).toEqual({ 'retry-after': 1 });
    expect(refusals.quotaExceeded('storageBytes').extras).toMatchObject({ quota: 'storageBytes', retryAfter: 1 });
  });
});

describe('refusal writer', () => {
  it('adds what a status requires where a call site forgot it', () => {
    expect(refusalHeaders(new GatewayException('unauthorized'))['www-authenticate']).toBe(TENANT_AUTH_CHALLENGE);
    expect(refusalHeaders(new GatewayException('method_not_allowed')).allow).toBe('');
    expect(refusalHeaders(new GatewayException('unavailable', undefined, { retryAfter: 7 }))['retry-after']).toBe('7');
    expect(refusalHeaders(new GatewayException('quota_exceeded', undefined, {}, { 'x-quota-reset': 3600 }))['retry-after']).toBe('3600');
    expect(refusalHeaders(new GatewayException('no_healthy_backend'))['retry-after']).toBe('1');
  });

  it('writes the catalogue body with the request id', () => {
    const { status, body } = refusalResponse(refusals.rateLimited('ip', 4), 'req-9');
    expect(status).toBe(429);
    expect(JSON.parse(body)).toEqual({ error: { code: 'rate_limited', message: 'Too many requests.', requestId: 'req-9', scope: 'ip', retryAfter: 4 } });
  });

  it('writes a refusal onto a bare socket as one HTTP/1.1 answer and closes it', async () => {
    let written = '';
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        written += chunk.toString('latin1');
        callback();
      },
    });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    writeRefusalToSocket(socket, refusals.methodNotAllowed([]), 'req-sock');
    await closed;
    const [head, body] = written.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(head).toContain('\r\nallow: \r\n');
    expect(head).toContain('\r\nx-request-id: req-sock\r\n');
    expect(head).toContain('\r\nconnection: close');
    expect(head).toContain('\r\nx-content-type-options: nosniff\r\n');
    expect(JSON.parse(body).error).toMatchObject({ code: 'method_not_allowed', requestId: 'req-sock' });
  });

  it('writes a refusal to a raw Node response with the security headers', async () => {
    const server = createServer((_req, res) => writeRefusal(res, refusals.unauthorized(), 'req-raw'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { status, headers, body } = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/' }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(401);
      expect(headers).toMatchObject({ 'www-authenticate': TENANT_AUTH_CHALLENGE, 'x-request-id': 'req-raw', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      expect(JSON.parse(body).error).toMatchObject({ code: 'unauthorized', requestId: 'req-raw' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
