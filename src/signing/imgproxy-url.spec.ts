import {
  buildImgproxyPath,
  decodeImgproxySource,
  encodePlainSource,
  parseGatewayImgproxyPath,
  parseImgproxyPath,
  type ImgproxySource,
} from './imgproxy-url';
import { SourceRejectedError, UrlRejectedError } from './signing.errors';

const SIG = 'oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8';
const DOC_PATH = '/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png';

describe('parseGatewayImgproxyPath', () => {
  it('splits a signed-mode URL into key id, signature, options and a base64 source', () => {
    const parsed = parseGatewayImgproxyPath(`/t/AbC123xyz789/${SIG}${DOC_PATH}?utm=1`);
    expect(parsed).toEqual({
      mode: 'signed',
      keyId: 'AbC123xyz789',
      signature: SIG,
      signedPath: DOC_PATH,
      optionsPath: '/rs:fill:300:400:0/g:sm',
      options: [
        { name: 'rs', args: ['fill', '300', '400', '0'] },
        { name: 'g', args: ['sm'] },
      ],
      source: { encoding: 'base64', raw: 'aHR0cDovL2V4YW1wbGUuY29tL2ltYWdlcy9jdXJpb3NpdHkuanBn', extension: 'png' },
    });
    expect(decodeImgproxySource(parsed.source).url).toBe('http://example.com/images/curiosity.jpg');
  });

  it('parses header mode with insecure and a plain source with @extension', () => {
    const parsed = parseGatewayImgproxyPath('/i/insecure/w:100/plain/local:///photos/cat.png@webp');
    expect(parsed.mode).toBe('header');
    expect(parsed.keyId).toBeUndefined();
    expect(parsed.signature).toBe('insecure');
    expect(parsed.signedPath).toBe('/w:100/plain/local:///photos/cat.png@webp');
    expect(parsed.source).toEqual({ encoding: 'plain', raw: 'local:///photos/cat.png', extension: 'webp' });
  });

  it('keeps the path exactly as received: no .. resolution, no decoding, empty option list allowed', () => {
    const parsed = parseGatewayImgproxyPath('/i/sig/plain/local:///a/../b%2F..%2Fc.png');
    expect(parsed.signedPath).toBe('/plain/local:///a/../b%2F..%2Fc.png');
    expect(parsed.optionsPath).toBe('');
    expect(parsed.options).toEqual([]);
    expect(parsed.source.raw).toBe('local:///a/../b%2F..%2Fc.png');
    expect(decodeImgproxySource(parsed.source).url).toBe('local:///a/../b/../c.png');
  });

  it("applies imgproxy's repairs: %3A in options and scheme:/ in plain sources", () => {
    const parsed = parseGatewayImgproxyPath('/t/key/sig/rs%3Afit%3A10%3A10/plain/local:/cats/a.png');
    expect(parsed.signedPath).toBe('/rs:fit:10:10/plain/local:///cats/a.png');
    expect(parsed.options).toEqual([{ name: 'rs', args: ['fit', '10', '10'] }]);
    expect(parsed.source.raw).toBe('local:///cats/a.png');

    const remote = parseGatewayImgproxyPath('/t/key/sig/w:10/plain/https:/cdn.example.com/a.jpg');
    expect(remote.source.raw).toBe('https://cdn.example.com/a.jpg');
    // The %3A repair stops at the plain source: its escapes are decoded once, later.
    const encoded = parseGatewayImgproxyPath('/t/key/sig/w:10/plain/https://cdn.example.com/a%3Ab.jpg');
    expect(encoded.source.raw).toBe('https://cdn.example.com/a%3Ab.jpg');
  });

  it('joins base64 segments and finds the extension across them', () => {
    const parsed = parseGatewayImgproxyPath('/i/s/aHR0cHM6Ly9j/ZG4uZXhhbXBsZS5jb20vYS5qcGc.avif');
    expect(parsed.source).toEqual({ encoding: 'base64', raw: 'aHR0cHM6Ly9jZG4uZXhhbXBsZS5jb20vYS5qcGc', extension: 'avif' });
    expect(decodeImgproxySource(parsed.source).url).toBe('https://cdn.example.com/a.jpg');
  });

  it.each([
    ['/x/sig/w:1/plain/local:///a.png', /start with/],
    ['/t/', /key id/],
    ['/t/bad.key/sig/w:1/plain/local:///a.png', /key id/],
    ['/t/key', /signature segment/],
    ['/t/key/sig', /signature segment/],
    ['/t/key//w:1/plain/local:///a.png', /signature segment/],
    ['/i/sig/w:1', /empty/],
    ['/i/sig/w:1/plain/@png', /empty/],
    ['/i/sig/w:1/plain/local:///a@b@png', /more than one format/],
    ['/i/sig/w:1/aGVsbG8.a.png', /more than one format/],
    ['/i/sig/w:1/plain/local:///a.png@we%62p', /extension is invalid/],
    ['/i/sig/w:1/enc/abcdef', /Encrypted/],
    ['/t/key/info/sig/plain/local:///a.png', /info/],
    ['/i/sig/fill/300/300/no/0/aGVsbG8', /basic imgproxy URL format/],
    ['/i/sig/w:1/plain/local:///caf\u00e9.png', /percent-encoded/],
    ['/i/sig/w:1/plain/local:///a b.png', /percent-encoded/],
    [`/i/sig/w:1/plain/local:///${'a'.repeat(17000)}`, /too long/],
  ])('refuses %p', (url, message) => {
    expect(() => parseGatewayImgproxyPath(url)).toThrow(UrlRejectedError);
    expect(() => parseGatewayImgproxyPath(url)).toThrow(message);
  });

  it('carries the bad_url code for the error catalogue', () => {
    expect.assertions(2);
    try {
      parseGatewayImgproxyPath('/i/sig/w:1/enc/abcdef');
    } catch (error) {
      expect(error).toBeInstanceOf(UrlRejectedError);
      expect((error as UrlRejectedError).code).toBe('bad_url');
    }
  });
});

describe('parseImgproxyPath (imgproxy server view, no gateway prefix)', () => {
  it('splits the signature off the path', () => {
    const parsed = parseImgproxyPath(`/${SIG}${DOC_PATH}`);
    expect(parsed.signature).toBe(SIG);
    expect(parsed.signedPath).toBe(DOC_PATH);
  });
});

describe('decodeImgproxySource', () => {
  it.each([
    ['plain', 'local:///a%ZZ.png'],
    ['plain', 'local:///a%2'],
    ['plain', 'local:///%C3%28.png'],
    ['base64', 'aGVsbG8+d29ybGQ'],
    ['base64', 'aGVsbG8/d29ybGQ'],
    ['base64', 'a'],
  ] as const)('refuses the %s source %p as bad_source', (encoding, raw) => {
    expect(() => decodeImgproxySource({ encoding, raw, extension: undefined })).toThrow(SourceRejectedError);
  });

  it('accepts padded base64 as imgproxy does', () => {
    expect(decodeImgproxySource({ encoding: 'base64', raw: 'aGk=', extension: undefined }).url).toBe('hi');
  });
});

describe('buildImgproxyPath', () => {
  it('keeps option bytes and re-encodes base64 sources as one unpadded segment', () => {
    const path = buildImgproxyPath('/rs:fill:300:400:0/g:sm', {
      encoding: 'base64',
      url: 'http://example.com/images/curiosity.jpg',
      extension: 'png',
    });
    expect(path).toBe('/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1wbGUuY29tL2ltYWdlcy9jdXJpb3NpdHkuanBn.png');
  });

  it('writes plain sources with @extension', () => {
    expect(buildImgproxyPath('/w:10', { encoding: 'plain', url: 'local:///tenants/t1/a.png', extension: 'webp' })).toBe(
      '/w:10/plain/local:///tenants/t1/a.png@webp',
    );
    expect(buildImgproxyPath('', { encoding: 'plain', url: 'https://cdn.example.com/a.jpg' })).toBe(
      '/plain/https://cdn.example.com/a.jpg',
    );
  });

  it.each([
    ['https://cdn.example.com/a.jpg?w=1&h=2#frag', 'https://cdn.example.com/a.jpg%3Fw=1&h=2%23frag'],
    ['https://cdn.example.com/a@2x.jpg', 'https://cdn.example.com/a%402x.jpg'],
    ['https://cdn.example.com/100%.jpg', 'https://cdn.example.com/100%25.jpg'],
    ['https://cdn.example.com/a b/caf\u00e9.jpg', 'https://cdn.example.com/a%20b/caf%C3%A9.jpg'],
    ['https://cdn.example.com:8443/x:/y', 'https://cdn.example.com:8443/x%3a/y'],
    ['local:///tenants/t1/a.png', 'local:///tenants/t1/a.png'],
    ['https://[2606:4700::1]:8443/[x].png', 'https://[2606:4700::1]:8443/%5Bx%5D.png'],
  ])('percent-encodes the plain source %p minimally', (url, encoded) => {
    expect(encodePlainSource(url)).toBe(encoded);
  });

  const roundTrips: ImgproxySource[] = [
    { encoding: 'plain', url: 'https://cdn.example.com/a.jpg?w=1&x=%41#f', extension: 'png' },
    { encoding: 'plain', url: 'https://cdn.example.com/x:/y:/z@2x caf\u00e9.jpg', extension: undefined },
    { encoding: 'plain', url: 'local:///tenants/t1/%3A:/a.png', extension: 'avif' },
    { encoding: 'base64', url: 'https://cdn.example.com/\u00e9?a=b', extension: 'webp' },
  ];

  it.each(roundTrips)('round-trips %p through the parser unchanged, with and without options', (source) => {
    for (const optionsPath of ['', '/rs:fit:10:10']) {
      const path = buildImgproxyPath(optionsPath, source);
      const parsed = parseImgproxyPath(`/sig${path}`);
      // What imgproxy verifies is exactly what was built: the repairs leave it untouched, both
      // ours and imgproxy's own (which runs without the leading slash).
      expect(parsed.signedPath).toBe(path);
      expect(`/${imgproxyRedenormalizePath(path.slice(1))}`).toBe(path);
      expect(parsed.optionsPath).toBe(optionsPath);
      expect(decodeImgproxySource(parsed.source)).toEqual({ ...source, extension: source.extension });
    }
  });
});

/** imgproxy's handlers/path.go redenormalizePath, transcribed to check built paths against it. */
function imgproxyRedenormalizePath(path: string): string {
  const plainAt = path.indexOf('/plain/');
  const options = (plainAt < 0 ? path : path.slice(0, plainAt)).replaceAll('%3A', ':');
  if (plainAt < 0) return options;
  let plain = path.slice(plainAt + '/plain/'.length);
  const match = /^([^\t\n\f\r ]+):\/([^/])/.exec(plain);
  if (match) {
    plain = `${match[1]}://${match[1] === 'local' ? '/' : ''}${match[2]}${plain.slice(match[0].length)}`;
  }
  return `${options}/plain/${plain}`;
}
