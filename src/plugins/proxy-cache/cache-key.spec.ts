import { DEFAULT_VARY, VARY_ANY, acceptBucket, baseKey, parseVary, variantKey } from './cache-key';

describe('cache keys', () => {
  describe('Accept buckets', () => {
    it.each([
      ['image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8', 'avif'],
      ['image/webp,*/*', 'webp'],
      ['image/png,image/*;q=0.8,*/*;q=0.5', 'other'],
      ['*/*', 'other'],
      ['', 'other'],
    ])('%s → %s', (accept, bucket) => {
      expect(acceptBucket(accept)).toBe(bucket);
    });

    it('treats a missing header and repeated headers like the backend does', () => {
      expect(acceptBucket(undefined)).toBe('other');
      expect(acceptBucket(['text/html', 'image/webp'])).toBe('webp');
    });

    it('follows imgproxy’s substring test, q=0 included, so a key never disagrees with the backend’s output', () => {
      expect(acceptBucket('image/avif;q=0, image/webp')).toBe('avif');
    });
  });

  describe('Vary names', () => {
    it('lower-cases, sorts and de-duplicates them', () => {
      expect(parseVary('Accept, DPR,accept')).toEqual(['accept', 'dpr']);
      expect(parseVary(['Width', 'Accept'])).toEqual(['accept', 'width']);
    });

    it('reads * as matching nothing, and absent or blank as no names', () => {
      expect(parseVary('Accept, *')).toEqual([VARY_ANY]);
      expect(parseVary(undefined)).toEqual([]);
      expect(parseVary('  ')).toEqual([]);
    });
  });

  describe('variant keys', () => {
    const base = baseKey('tenant-a', '/insecure/rs:fit:300/plain/local:///tenants/tenant-a/cat.jpg');

    it('puts the Accept bucket in the key, never the raw header', () => {
      const chrome = variantKey(base, DEFAULT_VARY, { accept: 'image/avif,image/webp,image/apng,*/*;q=0.8' });
      const firefox = variantKey(base, DEFAULT_VARY, { accept: 'image/avif,image/webp,*/*' });
      const oldSafari = variantKey(base, DEFAULT_VARY, { accept: 'image/png,image/svg+xml,image/*;q=0.8' });
      expect(chrome).toBe(firefox);
      expect(chrome).not.toBe(oldSafari);
      expect(chrome).not.toContain('apng');
      expect(chrome.endsWith('accept=avif')).toBe(true);
    });

    it('adds every header the response varies on, in name order', () => {
      const a = variantKey(base, ['accept', 'dpr'], { accept: 'image/webp', dpr: '2' });
      const b = variantKey(base, ['accept', 'dpr'], { accept: 'image/webp', dpr: '3' });
      const c = variantKey(base, ['accept', 'dpr'], { accept: 'image/webp', dpr: ' 2 ' });
      expect(a).not.toBe(b);
      expect(a).toBe(c);
    });

    it('is the base key alone for a response without Vary', () => {
      expect(variantKey(base, [], { accept: 'image/avif' })).toBe(base);
    });

    it('never lets two tenants share a key, whatever their paths', () => {
      const path = '/insecure/rs:fit:300/plain/https://cdn.example.com/a.jpg';
      expect(variantKey(baseKey('tenant-a', path), DEFAULT_VARY, {})).not.toBe(variantKey(baseKey('tenant-b', path), DEFAULT_VARY, {}));
      // A tenant id cannot be stretched into another tenant's path: the separator is not a path character.
      expect(baseKey('a', '/b/c')).not.toBe(baseKey('a/b', '/c'));
    });
  });
});
