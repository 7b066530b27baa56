import { SecretBox } from './secret-box';

const KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

describe('SecretBox (AES-256-GCM)', () => {
  const box = new SecretBox(KEY);
  const secret = Buffer.from('a3f1'.repeat(16), 'hex');

  it('round-trips, with a fresh IV each time', () => {
    const a = box.seal(secret, 'keyId1');
    const b = box.seal(secret, 'keyId1');
    expect(a.equals(b)).toBe(false);
    expect(a.length).toBe(12 + 16 + secret.length);
    expect(a.includes(secret)).toBe(false);
    expect(box.open(a, 'keyId1').equals(secret)).toBe(true);
    expect(box.open(b, 'keyId1').equals(secret)).toBe(true);
  });

  it('detects a flipped bit in the IV, the tag or the ciphertext', () => {
    const sealed = box.seal(secret, 'keyId1');
    for (const index of [0, 12, 28, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[index] ^= 0x01;
      expect(() => box.open(tampered, 'keyId1')).toThrow();
    }
  });

  it('refuses a blob moved to another row, a truncated blob and another key', () => {
    const sealed = box.seal(secret, 'keyId1');
    expect(() => box.open(sealed, 'keyId2')).toThrow();
    expect(() => box.open(sealed.subarray(0, 20), 'keyId1')).toThrow(/truncated/);
    const other = new SecretBox('ff'.repeat(32));
    expect(() => other.open(sealed, 'keyId1')).toThrow();
  });

  it('requires a 32-byte hex key', () => {
    expect(() => new SecretBox('abcd')).toThrow();
    expect(() => new SecretBox('zz'.repeat(32))).toThrow();
  });
});
