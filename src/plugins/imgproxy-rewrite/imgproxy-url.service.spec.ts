import { generateImageUrl } from '@imgproxy/imgproxy-node';
import { GatewayException } from '../../common/errors/gateway.exception';
import type { AuthContext } from '../../gateway/caller';
import { GatewayConfig } from '../../config/gateway-config';
import { ImgproxySigner } from '../../signing/imgproxy-signature';
import { decodeImgproxySource, parseImgproxyPath, type SignedModeImgproxyPath } from '../../signing/imgproxy-url';
import { ImgproxyUrlService, type TenantSigningKey } from './imgproxy-url.service';

const POOL_KEY = 'aa'.repeat(32);
const POOL_SALT = 'bb'.repeat(16);
const TENANT_KEY = '943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881';
const TENANT_SALT = '520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5';
const KEY_ID = 'AbC123xyz789';
const TENANT_ID = '6f1c1c0e-1d7e-4c4b-9a59-0b8f6d1f2a3b';

function auth(overrides: Partial<AuthContext> = {}): AuthContext {
  return {
    tenantId: TENANT_ID,
    tenantName: 'acme',
    keyId: KEY_ID,
    scopes: ['images:read'],
    via: 'signed-url',
    limits: { perMinute: 1, perHour: 1, monthlyRequests: 1, monthlyBandwidthBytes: 1, storageBytes: 1 },
    allowedSources: ['https://cdn.example.com/'],
    allowUnsignedUrls: false,
    ...overrides,
  };
}

function service(imgproxy: Partial<GatewayConfig['imgproxy']> = { key: POOL_KEY, salt: POOL_SALT }): ImgproxyUrlService {
  const config = new GatewayConfig();
  Object.assign(config.imgproxy, imgproxy);
  return new ImgproxyUrlService(config);
}

const tenantKey = (a = auth()): TenantSigningKey => ({ auth: a, signers: [new ImgproxySigner(TENANT_KEY, TENANT_SALT)] });

/** A URL as a browser sends it, built by the official Node builder. */
function builtUrl(source: string, options: Parameters<typeof generateImageUrl>[0]['options'] = { width: 100 }): string {
  return new URL(generateImageUrl({ endpoint: `https://gw.example/t/${KEY_ID}`, url: source, options, key: TENANT_KEY, salt: TENANT_SALT })).pathname;
}

function gatewayError(step: () => unknown): GatewayException {
  try {
    step();
  } catch (error) {
    if (error instanceof GatewayException) return error;
    throw error;
  }
  throw new Error('expected a GatewayException');
}

describe('ImgproxyUrlService', () => {
  it('verifies a builder URL, sandboxes the source and re-signs it with the pool key', () => {
    const urls = service();
    const path = urls.parse(builtUrl('local:///cat.png')) as SignedModeImgproxyPath;
    expect(path.mode).toBe('signed');
    urls.verifySignature(path, tenantKey());
    const upstream = urls.upstreamFor(path, auth());

    const sent = parseImgproxyPath(upstream.upstreamPath);
    expect(new ImgproxySigner(POOL_KEY, POOL_SALT).verify(sent.signature, sent.signedPath)).toBe(true);
    expect(new ImgproxySigner(TENANT_KEY, TENANT_SALT).verify(sent.signature, sent.signedPath)).toBe(false);
    expect(decodeImgproxySource(sent.source).url).toBe(`local:///tenants/${TENANT_ID}/cat.png`);
    expect(sent.optionsPath).toBe(path.optionsPath);
    expect(upstream.extraHeaders).toEqual({});
  });

  it('refuses a tampered URL or another key with 401', () => {
    const urls = service();
    const good = builtUrl('local:///cat.png');
    const tampered = urls.parse(good.replace('w:100', 'w:101')) as SignedModeImgproxyPath;
    expect(gatewayError(() => urls.verifySignature(tampered, tenantKey())).code).toBe('unauthorized');
    const path = urls.parse(good) as SignedModeImgproxyPath;
    const other: TenantSigningKey = { auth: auth(), signers: [new ImgproxySigner(TENANT_SALT, TENANT_KEY)] };
    expect(gatewayError(() => urls.verifySignature(path, other)).code).toBe('unauthorized');
  });

  it('verifies against the current and the previous pair, and refuses without a key', () => {
    const urls = service();
    const path = urls.parse(builtUrl('local:///cat.png')) as SignedModeImgproxyPath;
    const rotated: TenantSigningKey = { auth: auth(), signers: [new ImgproxySigner(TENANT_SALT, TENANT_KEY), new ImgproxySigner(TENANT_KEY, TENANT_SALT)] };
    expect(urls.signatureProblem(path, rotated)).toBeUndefined();
    expect(urls.signatureProblem(path, { auth: auth(), signers: [] })).toBe('bad_signature');
    expect(urls.signatureProblem(path, undefined)).toBe('bad_signature');
  });

  it('answers one 401 for every signature failure, with the tenant challenge', () => {
    const urls = service();
    const tampered = urls.parse(builtUrl('local:///cat.png').replace('w:100', 'w:101')) as SignedModeImgproxyPath;
    const unsigned = urls.parse(`/t/${KEY_ID}/insecure/w:10/plain/local:///a.png`) as SignedModeImgproxyPath;
    const errors = [tampered, unsigned].map((path) => gatewayError(() => urls.verifySignature(path, tenantKey())));
    for (const error of errors) {
      expect({ status: error.getStatus(), message: error.message, headers: error.headers }).toEqual({
        status: 401,
        message: 'A valid URL signature is required.',
        headers: { 'www-authenticate': 'Bearer realm="imgproxy-gateway"' },
      });
    }
  });

  it('accepts insecure only for tenants that allow unsigned URLs', () => {
    const urls = service();
    const path = urls.parse(`/t/${KEY_ID}/insecure/w:10/plain/local:///a.png`) as SignedModeImgproxyPath;
    expect(gatewayError(() => urls.verifySignature(path, tenantKey())).getStatus()).toBe(401);
    expect(() => urls.verifySignature(path, tenantKey(auth({ allowUnsignedUrls: true })))).not.toThrow();
  });

  it.each([
    ['traversal', 'local:///../other-tenant/a.png', 'bad_source'],
    ['encoded traversal', 'local:///%2e%2e/a.png', 'bad_source'],
    ['a host outside the allowed sources', 'https://evil.example/a.png', 'bad_source'],
    ['user-info host trick', 'https://cdn.example.com@evil.example/a.png', 'bad_source'],
    ['a private address', 'http://127.0.0.1/a.png', 'bad_source'],
  ])('refuses %s with 400', (_name, source, code) => {
    const urls = service();
    const path = urls.parse(builtUrl(source));
    const error = gatewayError(() => urls.upstreamFor(path, auth()));
    expect({ code: error.code, status: error.getStatus() }).toEqual({ code, status: 400 });
  });

  it('refuses malformed URLs and limit-raising options with 400 bad_url', () => {
    const urls = service();
    expect(gatewayError(() => urls.parse('/t/k/sig')).code).toBe('bad_url');
    const raising = urls.parse(`/i/insecure/max_src_resolution:1000/plain/local:///a.png`);
    expect(gatewayError(() => urls.upstreamFor(raising, auth())).code).toBe('bad_url');
  });

  it('uses insecure upstream without a pool key and sends the imgproxy secret when set', () => {
    const urls = service({ secret: 'backend-secret' });
    const upstream = urls.rewriteHeaderModeUrl('/i/anything/w:10/plain/local:///a.png?api_key=igw_x', auth({ via: 'api-key' }));
    expect(upstream.upstreamPath).toBe(`/insecure/w:10/plain/local:///tenants/${TENANT_ID}/a.png`);
    expect(upstream.extraHeaders).toEqual({ authorization: 'Bearer backend-secret' });
  });

  it('refuses a signed-mode URL on the header-mode rewrite', () => {
    expect(gatewayError(() => service().rewriteHeaderModeUrl(builtUrl('local:///a.png'), auth())).code).toBe('bad_url');
  });

  it('builds ready signed URLs that verify like builder URLs', () => {
    const urls = service();
    const url = urls.signedTenantUrl(KEY_ID, tenantKey(), 'local:///3b0c.png', '/rs:fit:800:800');
    expect(url).toMatch(new RegExp(`^/t/${KEY_ID}/[A-Za-z0-9_-]{43}/rs:fit:800:800/[A-Za-z0-9_-]+$`));
    const path = urls.parse(url) as SignedModeImgproxyPath;
    expect(() => urls.verifySignature(path, tenantKey())).not.toThrow();
    expect(decodeImgproxySource(path.source).url).toBe('local:///3b0c.png');
  });

  it('refuses a key without its salt at construction', () => {
    expect(() => service({ key: POOL_KEY })).toThrow(/IMGPROXY_KEY and IMGPROXY_SALT/);
  });
});
