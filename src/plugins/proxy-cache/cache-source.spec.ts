import { SOURCE_PREFIX_PATTERN, normalizeSourcePrefix, tenantSourceUrl } from './cache-source';

describe('cache sources and purge prefixes', () => {
  const tenant = '6f1d2c3b-0000-4000-8000-000000000001';

  it('shows local sources relative to the tenant’s folder, as the tenant wrote them', () => {
    expect(tenantSourceUrl(`local:///tenants/${tenant}/avatars/a.jpg`, tenant)).toBe('local:///avatars/a.jpg');
    expect(tenantSourceUrl('https://cdn.example.com/a.jpg', tenant)).toBe('https://cdn.example.com/a.jpg');
    // Another tenant's folder is never rewritten (the sandbox does not produce it anyway).
    expect(tenantSourceUrl('local:///tenants/other/a.jpg', tenant)).toBe('local:///tenants/other/a.jpg');
  });

  it('lower-cases the scheme and host of a prefix, and only those', () => {
    expect(normalizeSourcePrefix('HTTPS://CDN.Example.com/Avatars/')).toBe('https://cdn.example.com/Avatars/');
    expect(normalizeSourcePrefix('Local:///Avatars/')).toBe('local:///Avatars/');
    expect(normalizeSourcePrefix('s3://Bucket/Key')).toBe('s3://bucket/Key');
  });

  it('accepts a scheme followed by printable text as a prefix', () => {
    for (const ok of ['local:///', 'https://cdn.example.com/a/', 's3://bucket/prefix', 'local:']) expect(SOURCE_PREFIX_PATTERN.test(ok)).toBe(true);
    for (const bad of ['/avatars/', 'avatars', 'https://cdn.example.com/a b', 'local:///a\nb', '']) expect(SOURCE_PREFIX_PATTERN.test(bad)).toBe(false);
  });
});
