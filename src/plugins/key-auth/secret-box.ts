import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM for secrets at rest (the URL-signing key and salt of each API key). The stored
 * blob is `iv | tag | ciphertext`. The associated data binds a blob to its row (the key id),
 * so a ciphertext copied onto another key's row fails to open instead of signing for it.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(keyHex: string) {
    const key = Buffer.from(keyHex, 'hex');
    if (key.length !== 32 || !/^[0-9a-fA-F]{64}$/.test(keyHex)) throw new Error('SecretBox needs a 32-byte key given as 64 hex characters');
    this.key = key;
  }

  seal(plaintext: Buffer, associatedData: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
  }

  /** Throws when the blob was altered, belongs to another row or was sealed under another key. */
  open(blob: Buffer, associatedData: string): Buffer {
    if (blob.length < IV_BYTES + TAG_BYTES) throw new Error('sealed secret is truncated');
    const iv = blob.subarray(0, IV_BYTES);
    const tag = blob.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(blob.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  }
}
