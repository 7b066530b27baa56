import { generateImageInfoUrl, generateImageUrl } from '@imgproxy/imgproxy-node';
import { ImgproxySigner } from './imgproxy-signature';
import { decodeImgproxySource, parseGatewayImgproxyPath } from './imgproxy-url';
import { UrlRejectedError } from './signing.errors';

/**
 * docs/tenants-and-keys.md: the official builders work unchanged with the base URL `https://<gateway>/t/<keyId>`
 * and the key's URL-signing key and salt. These URLs come from @imgproxy/imgproxy-node itself.
 */
const ORIGIN = 'https://gw.example';
const KEY_ID = 'AbC123xyz789';
const ENDPOINT = `${ORIGIN}/t/${KEY_ID}`;
const KEY = '943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881';
const SALT = '520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5';
const signer = new ImgproxySigner(KEY, SALT);

/** The request target a browser sends: the URL without its origin, not normalised. */
function requestTarget(url: string): string {
  expect(url.startsWith(`${ORIGIN}/`)).toBe(true);
  return url.slice(ORIGIN.length);
}

function verifyBuilt(url: string): ReturnType<typeof parseGatewayImgproxyPath> {
  const parsed = parseGatewayImgproxyPath(requestTarget(url));
  expect(parsed.mode).toBe('signed');
  expect(parsed.keyId).toBe(KEY_ID);
  expect(signer.verify(parsed.signature, parsed.signedPath)).toBe(true);
  return parsed;
}

const cases: Array<[string, Parameters<typeof generateImageUrl>[0], string, string | undefined]> = [
  [
    'a base64 source (the default) with resize and gravity',
    {
      endpoint: ENDPOINT,
      url: 'https://cdn.example.com/images/curiosity.jpg',
      options: { resize: { resizing_type: 'fill', width: 300, height: 400, enlarge: false }, gravity: { type: 'sm' } },
      key: KEY,
      salt: SALT,
    },
    'https://cdn.example.com/images/curiosity.jpg',
    undefined,
  ],
  [
    'a base64 local source with format and quality',
    { endpoint: ENDPOINT, url: 'local:///photos/cat.png', options: { format: 'webp', quality: 70 }, key: KEY, salt: SALT },
    'local:///photos/cat.png',
    undefined,
  ],
  [
    'a plain source',
    {
      endpoint: ENDPOINT,
      url: { value: 'https://cdn.example.com/a.jpg', displayAs: 'plain' },
      options: { width: 120 },
      key: KEY,
      salt: SALT,
    },
    'https://cdn.example.com/a.jpg',
    undefined,
  ],
  [
    'a plain source with @extension',
    {
      endpoint: ENDPOINT,
      url: { value: 'local:///photos/cat.png@avif', displayAs: 'plain' },
      options: { height: 80 },
      key: KEY,
      salt: SALT,
    },
    'local:///photos/cat.png',
    'avif',
  ],
  [
    'a plain source without options',
    { endpoint: `${ENDPOINT}/`, url: { value: 'local:///cat.png', displayAs: 'plain' }, key: KEY, salt: SALT },
    'local:///cat.png',
    undefined,
  ],
];

describe('URLs built by @imgproxy/imgproxy-node', () => {
  it.each(cases)('verify for %s', (_name, params, source, extension) => {
    const parsed = verifyBuilt(generateImageUrl(params));
    expect(decodeImgproxySource(parsed.source)).toMatchObject({ url: source, extension });
  });

  it('carries the format option through the options, untouched', () => {
    const parsed = verifyBuilt(generateImageUrl(cases[1][1]));
    expect(parsed.options).toEqual(expect.arrayContaining([{ name: 'f', args: ['webp'] }]));
    expect(parsed.source.encoding).toBe('base64');
  });

  it('fails verification when any single byte of the path or the signature changes', () => {
    const target = requestTarget(generateImageUrl(cases[0][1]));
    const signatureStart = `/t/${KEY_ID}/`.length;
    for (let i = signatureStart; i < target.length; i++) {
      if (target[i] === '/') continue;
      const replacement = target[i] === 'A' ? 'B' : 'A';
      const tampered = `${target.slice(0, i)}${replacement}${target.slice(i + 1)}`;
      let accepted = false;
      try {
        const parsed = parseGatewayImgproxyPath(tampered);
        accepted = signer.verify(parsed.signature, parsed.signedPath);
      } catch {
        // A tampered byte that breaks the URL's shape is refused before verification: also a pass.
        accepted = false;
      }
      expect({ index: i, accepted }).toEqual({ index: i, accepted: false });
    }
  });

  it('fails verification with another key or salt', () => {
    const parsed = parseGatewayImgproxyPath(requestTarget(generateImageUrl(cases[0][1])));
    expect(new ImgproxySigner(KEY, KEY).verify(parsed.signature, parsed.signedPath)).toBe(false);
    expect(new ImgproxySigner(SALT, SALT).verify(parsed.signature, parsed.signedPath)).toBe(false);
  });

  it('refuses image info URLs and encrypted sources, which the gateway does not support', () => {
    const info = generateImageInfoUrl({ endpoint: ENDPOINT, url: 'local:///cat.png', key: KEY, salt: SALT });
    expect(() => parseGatewayImgproxyPath(requestTarget(info))).toThrow(UrlRejectedError);

    const encrypted = generateImageUrl({
      endpoint: ENDPOINT,
      url: { value: 'local:///cat.png', displayAs: 'encrypted' },
      encryptKey: '1eb5b0e971ad7f45324c1bb15c947cb207c43152fa5c6c7f35c4f36e0c18e0f1',
      encryptIV: 'a5df0c1ff83fe9d2ee8d5aea8d6e5b1c',
      key: KEY,
      salt: SALT,
    });
    expect(() => parseGatewayImgproxyPath(requestTarget(encrypted))).toThrow(/Encrypted source URLs/);
  });
});
