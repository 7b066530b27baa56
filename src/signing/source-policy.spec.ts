import { parseGatewayImgproxyPath } from './imgproxy-url';
import { SourceRejectedError, UrlRejectedError } from './signing.errors';
import { parseSourcePrefix, SourcePolicy, type TenantSourceScope } from './source-policy';

const OPTIONS = '/rs:fit:100:100';
const TENANT: TenantSourceScope = {
  tenantId: 'tenant-1',
  allowedSources: ['https://tenant-assets.example.net/t1/', 'https://example.com/'],
};
const OTHER_TENANT: TenantSourceScope = { tenantId: 'tenant-2', allowedSources: [] };

const policy = new SourcePolicy({
  allowedSources: [
    'https://cdn.example.com/',
    'http://images.example.org/public/',
    'https://[2606:4700::1111]/',
    'https://93.184.216.34/',
  ],
  allowPrivateAddresses: false,
});

const plain = (source: string): string => `/plain/${source}`;
const b64 = (source: string): string => `/${Buffer.from(source, 'utf8').toString('base64url')}`;
const local = (path: string): string => `local:///tenants/tenant-1/${path}`;

/** Runs a tenant URL through the parser and the policy, as the proxy will. */
function approve(suffix: string, tenant = TENANT, sourcePolicy = policy): string {
  const parsed = parseGatewayImgproxyPath(`/t/AbC123xyz789/sig${suffix}`);
  return sourcePolicy.approve(parsed, tenant).upstreamPath;
}

type Expectation = { upstream: string } | { code: 'bad_source' | 'bad_url' };
/** Approved: the source part of the upstream path (the options pass through unchanged). */
const ok = (upstreamSource: string): Expectation => ({ upstream: upstreamSource });
const BAD_SOURCE: Expectation = { code: 'bad_source' };
const BAD_URL: Expectation = { code: 'bad_url' };

/** [name, source part of the tenant URL (after OPTIONS), expectation] */
const corpus: Array<[string, string, Expectation]> = [
  // Allowed: local sources land in the tenant's folder.
  ['plain local file', plain('local:///cat.png'), ok(plain(local('cat.png')))],
  ['plain local with @ext', plain('local:///p/2024/cat.png@webp'), ok(`${plain(local('p/2024/cat.png'))}@webp`)],
  ['base64 local with .ext', `${b64('local:///cat.png')}.png`, ok(`${b64(local('cat.png'))}.png`)],
  ['local:/ repaired', plain('local:/cat.png'), ok(plain(local('cat.png')))],
  ['local file name with a space', plain('local:///a%20b.png'), ok(plain(local('a%20b.png')))],
  // Allowed: remote sources on an allowed prefix.
  ['global prefix', plain('https://cdn.example.com/a.jpg'), ok(plain('https://cdn.example.com/a.jpg'))],
  ['upper-case scheme and host', plain('HTTPS://CDN.Example.COM/a.jpg'), ok(plain('https://cdn.example.com/a.jpg'))],
  ['explicit default port', plain('https://cdn.example.com:443/a.jpg'), ok(plain('https://cdn.example.com:443/a.jpg'))],
  ['trailing dot in host', plain('https://cdn.example.com./a.jpg'), ok(plain('https://cdn.example.com/a.jpg'))],
  ['tenant prefix', plain('https://tenant-assets.example.net/t1/x.png'), ok(plain('https://tenant-assets.example.net/t1/x.png'))],
  ['global path prefix', plain('http://images.example.org/public/a.png'), ok(plain('http://images.example.org/public/a.png'))],
  ['public IPv6 on the list', plain('https://[2606:4700::1111]/a.png'), ok(plain('https://[2606:4700::1111]/a.png'))],
  ['public IPv4 on the list', plain('https://93.184.216.34/a.png'), ok(plain('https://93.184.216.34/a.png'))],
  ['encoded query stays encoded', plain('https://cdn.example.com/a.jpg%3Fv=2'), ok(plain('https://cdn.example.com/a.jpg%3Fv=2'))],
  ['https:/ repaired', plain('https:/cdn.example.com/a.jpg'), ok(plain('https://cdn.example.com/a.jpg'))],
  ['base64 remote with .ext', `${b64('https://cdn.example.com/a.jpg')}.webp`, ok(`${b64('https://cdn.example.com/a.jpg')}.webp`)],
  ['encoded host decoded once', plain('https://%63dn.example.com/a.jpg'), ok(plain('https://cdn.example.com/a.jpg'))],

  // Traversal and escapes from the tenant folder.
  ['plain ..', plain('local:///../etc/passwd'), BAD_SOURCE],
  ['plain nested ..', plain('local:///a/../../etc/passwd'), BAD_SOURCE],
  ['percent-encoded ..', plain('local:///%2e%2e/secret.png'), BAD_SOURCE],
  ['upper-case percent-encoded ..', plain('local:///%2E%2E/secret.png'), BAD_SOURCE],
  ['double-encoded ..', plain('local:///%252e%252e/secret.png'), BAD_SOURCE],
  ['triple-encoded ..', plain('local:///%25252e%25252e/secret.png'), BAD_SOURCE],
  ['encoded slashes around ..', plain('local:///a%2F..%2F..%2Fb.png'), BAD_SOURCE],
  ['malformed escape next to encoded ..', plain('local:///%25zz/%252e%252e/b.png'), BAD_SOURCE],
  ['base64 ..', b64('local:///../x.png'), BAD_SOURCE],
  ['base64 with encoded ..', b64('local:///%2e%2e/x.png'), BAD_SOURCE],
  ['servlet ..;', plain('local:///..;/x.png'), BAD_SOURCE],
  ['absolute local path', plain('local:////etc/passwd'), BAD_SOURCE],
  ['local with a host', plain('local://host/a.png'), BAD_SOURCE],
  ['empty local path', plain('local:///'), BAD_SOURCE],
  ['NUL byte', plain('local:///a.png%00.jpg'), BAD_SOURCE],
  ['encoded backslash', plain('local:///a%5C..%5Cb.png'), BAD_SOURCE],
  ['double-encoded backslash', plain('local:///a%255C..%255Cb.png'), BAD_SOURCE],
  ['CRLF injection', plain('https://cdn.example.com/a%0D%0AX-Injected:%201.jpg'), BAD_SOURCE],
  ['remote ..', plain('https://cdn.example.com/%2e%2e/private.jpg'), BAD_SOURCE],
  ['remote double-encoded ../', plain('https://cdn.example.com/a/..%252f..%252fadmin'), BAD_SOURCE],

  // Host confusion.
  ['userinfo trick, encoded @', plain('https://example.com%40evil.com/a.jpg'), BAD_SOURCE],
  ['userinfo trick, base64', b64('https://example.com@evil.com/a.jpg'), BAD_SOURCE],
  ['userinfo trick, raw @ splits the format', plain('https://example.com@evil.com/a.jpg'), BAD_URL],
  ['userinfo with port', b64('https://cdn.example.com:443@evil.com/a.jpg'), BAD_SOURCE],
  ['suffix trick', plain('https://example.com.evil.com/a.jpg'), BAD_SOURCE],
  ['prefix-of-name trick', plain('https://evilexample.com/a.jpg'), BAD_SOURCE],
  ['fragment before @', plain('https://evil.com%23%40cdn.example.com/a.jpg'), BAD_SOURCE],
  ['backslash before @', plain('https://cdn.example.com%5C%40evil.com/a.jpg'), BAD_SOURCE],
  ['other port', plain('https://cdn.example.com:8443/a.jpg'), BAD_SOURCE],
  ['other scheme than the prefix', plain('http://cdn.example.com/a.jpg'), BAD_SOURCE],
  ['path prefix without boundary', plain('http://images.example.org/public-evil/a.png'), BAD_SOURCE],
  ['path outside the prefix', plain('http://images.example.org/private/a.png'), BAD_SOURCE],
  ['unicode host', plain('https://cdn.ex%C3%A4mple.com/a.jpg'), BAD_SOURCE],

  // Private, loopback, link-local and metadata destinations, in every spelling.
  ['loopback', plain('http://127.0.0.1/a.png'), BAD_SOURCE],
  ['localhost', plain('http://localhost/a.png'), BAD_SOURCE],
  ['LOCALHOST with trailing dot', plain('http://LOCALHOST./a.png'), BAD_SOURCE],
  ['*.localhost', plain('http://app.localhost/a.png'), BAD_SOURCE],
  ['EC2 metadata', plain('http://169.254.169.254/latest/meta-data/'), BAD_SOURCE],
  ['EC2 IPv6 metadata', plain('http://[fd00:ec2::254]/latest/meta-data/'), BAD_SOURCE],
  ['GCP metadata name', plain('http://metadata.google.internal/computeMetadata/v1/'), BAD_SOURCE],
  ['Alibaba metadata (CGNAT range)', plain('http://100.100.100.200/latest/'), BAD_SOURCE],
  ['decimal IPv4', plain('http://2130706433/a.png'), BAD_SOURCE],
  ['hex IPv4', plain('http://0x7f.1/a.png'), BAD_SOURCE],
  ['hex IPv4 in one number', plain('http://0x7f000001/a.png'), BAD_SOURCE],
  ['octal IPv4', plain('http://0177.0.0.1/a.png'), BAD_SOURCE],
  ['short IPv4', plain('http://127.1/a.png'), BAD_SOURCE],
  ['unspecified IPv4', plain('http://0.0.0.0/a.png'), BAD_SOURCE],
  ['RFC 1918 10/8', plain('http://10.0.0.5/a.png'), BAD_SOURCE],
  ['RFC 1918 192.168/16, base64', b64('http://192.168.1.1/a.png'), BAD_SOURCE],
  ['IPv6 loopback', plain('http://[::1]/a.png'), BAD_SOURCE],
  ['IPv4-mapped IPv6', plain('http://[::ffff:127.0.0.1]/a.png'), BAD_SOURCE],
  ['IPv4-mapped IPv6 in hex', plain('http://[::ffff:7f00:1]/a.png'), BAD_SOURCE],
  ['IPv4-compatible IPv6', plain('http://[::7f00:1]/a.png'), BAD_SOURCE],
  ['NAT64 of the metadata address', plain('http://[64:ff9b::a9fe:a9fe]/a.png'), BAD_SOURCE],
  ['IPv6 link-local', plain('http://[fe80::1]/a.png'), BAD_SOURCE],
  ['IPv6 zone id', plain('http://[fe80::1%2525eth0]/a.png'), BAD_SOURCE],
  ['single-label service name', plain('http://redis:6379/a.png'), BAD_SOURCE],
  ['Kubernetes service name', plain('http://api.default.svc/a.png'), BAD_SOURCE],

  // Schemes.
  ['file scheme', plain('file:///etc/passwd'), BAD_SOURCE],
  ['ftp scheme', plain('ftp://cdn.example.com/a.jpg'), BAD_SOURCE],
  ['s3 scheme not configured', plain('s3://bucket/a.jpg'), BAD_SOURCE],
  ['data scheme', plain('data:image/png;base64,iVBORw0KGgo='), BAD_SOURCE],
  ['gopher scheme', b64('gopher://127.0.0.1:6379/_INFO'), BAD_SOURCE],
  ['no scheme', plain('cdn.example.com/a.jpg'), BAD_SOURCE],
  ['http without //', b64('http:cdn.example.com/a.jpg'), BAD_SOURCE],
];

const wmu = Buffer.from('http://169.254.169.254/').toString('base64url');
/** [name, options path, expectation]: options that raise backend limits or fetch other URLs. */
const optionCorpus: Array<[string, string, Expectation]> = [
  ['max_src_resolution', '/msr:1000', BAD_URL],
  ['max_src_file_size', '/w:10/max_src_file_size:999999999', BAD_URL],
  ['max_animation_frames', '/maf:1000', BAD_URL],
  ['max_animation_frame_resolution', '/mafr:1000', BAD_URL],
  ['max_result_dimension', '/mrd:100000', BAD_URL],
  ['percent-encoded option name', '/m%73fs:999999999', BAD_URL],
  ['raw streaming', '/raw:1', BAD_URL],
  ['watermark URL', `/wmu:${wmu}`, BAD_URL],
  ['fallback image URL', `/fallback_image_url:${wmu}`, BAD_URL],
  ['ordinary options pass untouched', '/rs:fill:300:400:0/g:sm/q:80/cb:v2/pr:thumb', ok(plain(local('a.png')))],
];

function expectOutcome(suffix: string, expected: Expectation, upstreamPrefix: string): void {
  if ('upstream' in expected) {
    expect(approve(suffix)).toBe(`${upstreamPrefix}${expected.upstream}`);
    return;
  }
  let caught: unknown;
  try {
    approve(suffix);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(expected.code === 'bad_url' ? UrlRejectedError : SourceRejectedError);
  expect((caught as UrlRejectedError | SourceRejectedError).code).toBe(expected.code);
  // Messages go to the tenant: they name the rule, never the rewritten internal path.
  expect((caught as Error).message).not.toMatch(/tenants\//);
}

describe('SourcePolicy corpus', () => {
  it('has a substantial corpus', () => {
    expect(corpus.length + optionCorpus.length).toBeGreaterThanOrEqual(40);
  });

  it.each(corpus)('%s', (_name, source, expected) => {
    expectOutcome(`${OPTIONS}${source}`, expected, OPTIONS);
  });

  it.each(optionCorpus)('option: %s', (_name, options, expected) => {
    expectOutcome(`${options}${plain('local:///a.png')}`, expected, options);
  });

  it('works without any options', () => {
    expect(approve(plain('local:///a.png'))).toBe(plain(local('a.png')));
  });
});

describe('SourcePolicy behaviour', () => {
  it("returns the approved source alongside the upstream path", () => {
    const parsed = parseGatewayImgproxyPath(`/i/insecure${OPTIONS}${plain('local:///a.png@avif')}`);
    expect(policy.approve(parsed, TENANT).source).toEqual({
      encoding: 'plain',
      url: 'local:///tenants/tenant-1/a.png',
      extension: 'avif',
      scheme: 'local',
    });
  });

  it("keeps one tenant's allowed sources away from another tenant", () => {
    const suffix = `${OPTIONS}${plain('https://tenant-assets.example.net/t1/x.png')}`;
    expect(approve(suffix, TENANT)).toContain('tenant-assets.example.net');
    expect(() => approve(suffix, OTHER_TENANT)).toThrow(SourceRejectedError);
  });

  it('sandboxes every tenant into its own folder', () => {
    expect(approve(plain('local:///a.png'), OTHER_TENANT)).toBe(plain('local:///tenants/tenant-2/a.png'));
  });

  it('lets the operator allow private addresses, still only on the allow-list and in canonical form', () => {
    const devPolicy = new SourcePolicy({
      allowedSources: ['http://127.0.0.1:9000/', 'http://minio:9000/bucket/'],
      allowPrivateAddresses: true,
    });
    expect(approve(plain('http://127.0.0.1:9000/a.png'), TENANT, devPolicy)).toBe(plain('http://127.0.0.1:9000/a.png'));
    expect(approve(plain('http://minio:9000/bucket/a.png'), TENANT, devPolicy)).toBe(plain('http://minio:9000/bucket/a.png'));
    expect(() => approve(plain('http://127.0.0.1:9001/a.png'), TENANT, devPolicy)).toThrow(SourceRejectedError);
    expect(() => approve(plain('http://2130706433:9000/a.png'), TENANT, devPolicy)).toThrow(SourceRejectedError);
  });

  it('allows other schemes only when configured, and then only on the allow-list', () => {
    const s3Policy = new SourcePolicy({
      allowedSources: ['s3://tenant-bucket/'],
      allowPrivateAddresses: false,
      allowedSchemes: ['s3', 'https'],
    });
    expect(approve(plain('s3://tenant-bucket/a.png'), TENANT, s3Policy)).toBe(plain('s3://tenant-bucket/a.png'));
    expect(() => approve(plain('s3://other-bucket/a.png'), TENANT, s3Policy)).toThrow(SourceRejectedError);
    expect(() => approve(plain('local:///a.png'), TENANT, s3Policy)).toThrow(/scheme "local"/);
  });

  it('ignores tenant allow-list entries that do not parse instead of widening access', () => {
    const tenant = { tenantId: 'tenant-3', allowedSources: ['not a url', 'https://ok.example.com/'] };
    expect(approve(plain('https://ok.example.com/a.png'), tenant)).toBe(plain('https://ok.example.com/a.png'));
  });

  it('refuses tenant ids that are not plain identifiers, since they become a directory name', () => {
    expect(() => approve(plain('local:///a.png'), { tenantId: '../x', allowedSources: [] })).toThrow(TypeError);
  });
});

describe('parseSourcePrefix', () => {
  it('parses an allow-list entry', () => {
    expect(parseSourcePrefix('HTTPS://CDN.example.com')).toEqual({ scheme: 'https', host: 'cdn.example.com', port: 443, path: '/' });
    expect(parseSourcePrefix('http://[2606:4700::1111]:8080/img')).toEqual({
      scheme: 'http',
      host: '2606:4700:0:0:0:0:0:1111',
      port: 8080,
      path: '/img',
    });
  });

  it.each([
    'cdn.example.com',
    'https://user@cdn.example.com/',
    'https://cdn.example.com/?q=1',
    'https://cdn.example.com/a/../b/',
    'https://2130706433/',
    'local:///uploads/',
  ])('refuses %p', (prefix) => {
    expect(() => parseSourcePrefix(prefix)).toThrow(TypeError);
  });

  it('makes a bad global entry fail at construction', () => {
    expect(() => new SourcePolicy({ allowedSources: ['https://cdn.example.com/', 'ftp//x'], allowPrivateAddresses: false })).toThrow(
      /ftp\/\/x/,
    );
  });
});
