import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The API key format of docs/tenants-and-keys.md, as pure functions: `igw_<keyId>_<secret>`, keyId 12 and
 * secret 32 base62 characters (about 190 bits). Only HMAC-SHA256(pepper, secret) is stored.
 */
export const KEY_PREFIX = 'igw_';
export const KEY_ID_LENGTH = 12;
export const SECRET_LENGTH = 32;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 248 = 4 × 62: bytes at or above it are dropped so every character is equally likely. */
const UNBIASED_LIMIT = 256 - (256 % BASE62.length);
const KEY_PATTERN = /^igw_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})$/;
const KEY_ID_PATTERN = /^[0-9A-Za-z]{12}$/;

export interface ParsedApiKey {
  keyId: string;
  secret: string;
}

export interface GeneratedApiKey extends ParsedApiKey {
  /** The whole key, shown to the tenant once. */
  key: string;
}

/** `length` base62 characters from crypto.randomBytes, by rejection sampling (no modulo bias). */
export function randomBase62(length: number, random: (size: number) => Buffer = randomBytes): string {
  let out = '';
  while (out.length < length) {
    // 25% headroom covers the ~3% of rejected bytes in one call almost always.
    const bytes = random(Math.ceil((length - out.length) * 1.25) + 4);
    for (const byte of bytes) {
      if (byte >= UNBIASED_LIMIT) continue;
      out += BASE62[byte % BASE62.length];
      if (out.length === length) break;
    }
  }
  return out;
}

export function generateApiKey(): GeneratedApiKey {
  const keyId = randomBase62(KEY_ID_LENGTH);
  const secret = randomBase62(SECRET_LENGTH);
  return { keyId, secret, key: formatApiKey(keyId, secret) };
}

export function formatApiKey(keyId: string, secret: string): string {
  return `${KEY_PREFIX}${keyId}_${secret}`;
}

/** Undefined for anything that is not exactly a well-formed key (no lookup is worth making). */
export function parseApiKey(text: string | undefined): ParsedApiKey | undefined {
  if (!text) return undefined;
  const match = KEY_PATTERN.exec(text);
  return match ? { keyId: match[1], secret: match[2] } : undefined;
}

export function isKeyId(text: string): boolean {
  return KEY_ID_PATTERN.test(text);
}

/** What a listing shows instead of the key: enough to recognise it, nothing to use. */
export function maskApiKey(keyId: string): string {
  return `${KEY_PREFIX}${keyId}_${'*'.repeat(8)}`;
}

export function hashSecret(pepper: string, secret: string): Buffer {
  return createHmac('sha256', pepper).update(secret).digest();
}

/** Constant-time: the comparison takes as long whichever byte differs. */
export function verifySecret(pepper: string, secret: string, storedHash: Buffer): boolean {
  const candidate = hashSecret(pepper, secret);
  return storedHash.length === candidate.length && timingSafeEqual(candidate, storedHash);
}

/** imgproxy-style URL-signing material: 32 random bytes, hex (like IMGPROXY_KEY / IMGPROXY_SALT). */
export function generateSigningSecret(): Buffer {
  return randomBytes(32);
}
