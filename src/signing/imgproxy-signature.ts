import { createHmac, timingSafeEqual } from 'node:crypto';

/** imgproxy signs with the full HMAC-SHA256 output unless IMGPROXY_SIGNATURE_SIZE shortens it. */
const SIGNATURE_BYTES = 32;
/** 32 bytes in URL-safe base64 without padding. */
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const HEX_PATTERN = /^(?:[0-9a-fA-F]{2})+$/;

/** The signature segment imgproxy's builders write when no key is configured. */
export const INSECURE_SIGNATURE = 'insecure';

/**
 * Decodes a hex key or salt as imgproxy takes them (`IMGPROXY_KEY`, `IMGPROXY_SALT`).
 * Throws a TypeError naming the setting, so config validation can report it at boot.
 */
export function parseHexSecret(name: string, hex: string): Buffer {
  if (!HEX_PATTERN.test(hex)) {
    throw new TypeError(`${name} must be a non-empty hex string of even length`);
  }
  return Buffer.from(hex, 'hex');
}

/**
 * Signs and verifies imgproxy paths with one key/salt pair. The hex is parsed once here, so the
 * request path only hashes.
 */
export class ImgproxySigner {
  private readonly key: Buffer;
  private readonly salt: Buffer;

  constructor(keyHex: string, saltHex: string) {
    this.key = parseHexSecret('key', keyHex);
    this.salt = parseHexSecret('salt', saltHex);
  }

  /** URL-safe base64 (no padding) of HMAC-SHA256(key, salt + path). */
  sign(path: string): string {
    return this.digest(path).toString('base64url');
  }

  /** Constant-time check of a signature segment against the path that follows it. */
  verify(signature: string, path: string): boolean {
    // The pattern check only reveals the signature's shape, which is public.
    if (!SIGNATURE_PATTERN.test(signature)) return false;
    const given = Buffer.from(signature, 'base64url');
    // Only the canonical spelling counts: the last character's two spare bits would otherwise give
    // every signature four accepted forms (and every image four cache keys).
    if (given.length !== SIGNATURE_BYTES || given.toString('base64url') !== signature) return false;
    return timingSafeEqual(given, this.digest(path));
  }

  /** `/<signature><path>`: the request path imgproxy expects. */
  signPath(path: string): string {
    return `/${this.sign(path)}${withLeadingSlash(path)}`;
  }

  private digest(path: string): Buffer {
    // imgproxy re-adds the leading slash when a caller split it off; mirror it so both agree.
    return createHmac('sha256', this.key).update(this.salt).update(withLeadingSlash(path)).digest();
  }
}

/** One-off signing (parses the hex on every call; use ImgproxySigner on hot paths). */
export function signImgproxyPath(path: string, keyHex: string, saltHex: string): string {
  return new ImgproxySigner(keyHex, saltHex).sign(path);
}

/** One-off constant-time verification (parses the hex on every call). */
export function verifyImgproxySignature(signature: string, path: string, keyHex: string, saltHex: string): boolean {
  return new ImgproxySigner(keyHex, saltHex).verify(signature, path);
}

/**
 * The request path to send to a backend: signed with the pool's key, or `insecure` when the pool
 * has none configured (docs/imgproxy.md).
 */
export function toImgproxyRequestPath(path: string, signer: ImgproxySigner | undefined): string {
  return signer ? signer.signPath(path) : `/${INSECURE_SIGNATURE}${withLeadingSlash(path)}`;
}

function withLeadingSlash(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}
