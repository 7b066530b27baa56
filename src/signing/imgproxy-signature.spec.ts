import {
  ImgproxySigner,
  parseHexSecret,
  signImgproxyPath,
  toImgproxyRequestPath,
  verifyImgproxySignature,
} from './imgproxy-signature';

// The example from imgproxy's "Signing the URL" guide.
const DOC_KEY = '736563726574';
const DOC_SALT = '68656C6C6F';
const DOC_PATH = '/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png';
const DOC_SIGNATURE = 'oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8';

describe('imgproxy signature', () => {
  it("matches the test vector from imgproxy's documentation", () => {
    expect(signImgproxyPath(DOC_PATH, DOC_KEY, DOC_SALT)).toBe(DOC_SIGNATURE);
    expect(new ImgproxySigner(DOC_KEY, DOC_SALT).signPath(DOC_PATH)).toBe(`/${DOC_SIGNATURE}${DOC_PATH}`);
  });

  it('verifies the documented signature and refuses any change to path or signature', () => {
    const signer = new ImgproxySigner(DOC_KEY, DOC_SALT);
    expect(signer.verify(DOC_SIGNATURE, DOC_PATH)).toBe(true);
    expect(verifyImgproxySignature(DOC_SIGNATURE, DOC_PATH, DOC_KEY, DOC_SALT)).toBe(true);

    expect(signer.verify(DOC_SIGNATURE, DOC_PATH.replace('300', '301'))).toBe(false);
    expect(signer.verify(`${DOC_SIGNATURE.slice(0, -2)}X8`, DOC_PATH)).toBe(false);
    expect(signer.verify(DOC_SIGNATURE.slice(0, -1), DOC_PATH)).toBe(false);
    // `8` and `9` differ only in the two bits past the 256th: a non-canonical spelling.
    expect(signer.verify(`${DOC_SIGNATURE.slice(0, -1)}9`, DOC_PATH)).toBe(false);
    expect(signer.verify(`${DOC_SIGNATURE}=`, DOC_PATH)).toBe(false);
    expect(signer.verify('insecure', DOC_PATH)).toBe(false);
    expect(signer.verify('', DOC_PATH)).toBe(false);
    expect(new ImgproxySigner(DOC_KEY, '68656C6C6E').verify(DOC_SIGNATURE, DOC_PATH)).toBe(false);
  });

  it('re-adds a missing leading slash before hashing, as imgproxy does', () => {
    expect(signImgproxyPath(DOC_PATH.slice(1), DOC_KEY, DOC_SALT)).toBe(DOC_SIGNATURE);
  });

  it('signs upstream paths, or marks them insecure when the pool has no key', () => {
    const signer = new ImgproxySigner(DOC_KEY, DOC_SALT);
    expect(toImgproxyRequestPath(DOC_PATH, signer)).toBe(`/${DOC_SIGNATURE}${DOC_PATH}`);
    expect(toImgproxyRequestPath(DOC_PATH, undefined)).toBe(`/insecure${DOC_PATH}`);
  });

  it.each(['', 'abc', 'zz', 'not hex'])('refuses the hex key %p', (hex) => {
    expect(() => parseHexSecret('IMGPROXY_KEY', hex)).toThrow(/IMGPROXY_KEY must be/);
    expect(() => new ImgproxySigner(hex, DOC_SALT)).toThrow(TypeError);
  });
});
