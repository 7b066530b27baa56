import {
  formatApiKey,
  generateApiKey,
  hashSecret,
  isKeyId,
  maskApiKey,
  parseApiKey,
  randomBase62,
  verifySecret,
} from './api-key-format';

describe('API key format', () => {
  it('generates igw_<12 base62>_<32 base62> keys that parse back', () => {
    const generated = generateApiKey();
    expect(generated.key).toMatch(/^igw_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}$/);
    expect(parseApiKey(generated.key)).toEqual({ keyId: generated.keyId, secret: generated.secret });
    expect(isKeyId(generated.keyId)).toBe(true);
  });

  it('never repeats a key id or secret across many keys', () => {
    const ids = new Set<string>();
    const secrets = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const { keyId, secret } = generateApiKey();
      ids.add(keyId);
      secrets.add(secret);
    }
    expect(ids.size).toBe(2000);
    expect(secrets.size).toBe(2000);
  });

  it('refuses anything that is not exactly a key', () => {
    const keyId = 'AbCdEf012345';
    const secret = 'x'.repeat(32);
    expect(parseApiKey(formatApiKey(keyId, secret))).toEqual({ keyId, secret });
    for (const bad of [
      undefined,
      '',
      `igw_${keyId}_${secret}x`,
      `igw_${keyId}_${secret.slice(1)}`,
      `igx_${keyId}_${secret}`,
      `igw_${keyId.slice(1)}_${secret}`,
      `igw_${keyId}-${secret}`,
      `igw_${keyId}_${secret.slice(1)}!`,
      ` igw_${keyId}_${secret}`,
      `igw_${keyId}_${secret}\n`,
    ]) {
      expect(parseApiKey(bad)).toBeUndefined();
    }
    expect(isKeyId('short')).toBe(false);
  });

  it('masks a key so the secret cannot be recovered from a listing', () => {
    expect(maskApiKey('AbCdEf012345')).toBe('igw_AbCdEf012345_********');
  });

  describe('randomBase62', () => {
    it('drops bytes >= 248 instead of folding them (no modulo bias)', () => {
      // 248..255 would map to 0..7 under a plain modulo; they must be skipped.
      const feed = [248, 255, 0, 61, 62, 247];
      const random = (size: number) => Buffer.from(feed.splice(0, size));
      expect(randomBase62(4, random)).toBe('0z0z');
    });

    it('is close to uniform over many characters', () => {
      const text = randomBase62(62 * 2000);
      const counts = new Map<string, number>();
      for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
      expect(counts.size).toBe(62);
      for (const count of counts.values()) {
        expect(count).toBeGreaterThan(1700);
        expect(count).toBeLessThan(2300);
      }
    });
  });

  describe('HMAC of the secret', () => {
    const pepper = 'pepper-0123456789abcdef';

    it('is 32 bytes, deterministic, and depends on the pepper', () => {
      const a = hashSecret(pepper, 'secret');
      expect(a).toHaveLength(32);
      expect(hashSecret(pepper, 'secret').equals(a)).toBe(true);
      expect(hashSecret('another-pepper-0123456', 'secret').equals(a)).toBe(false);
      // Known value: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog").
      expect(hashSecret('key', 'The quick brown fox jumps over the lazy dog').toString('hex')).toBe(
        'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
      );
    });

    it('verifies the right secret and refuses others, including a wrong-length hash', () => {
      const stored = hashSecret(pepper, 'right');
      expect(verifySecret(pepper, 'right', stored)).toBe(true);
      expect(verifySecret(pepper, 'wrong', stored)).toBe(false);
      expect(verifySecret('other-pepper-0123456789', 'right', stored)).toBe(false);
      expect(verifySecret(pepper, 'right', stored.subarray(0, 16))).toBe(false);
    });
  });
});
