import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity({ name: 'api_keys' })
export class ApiKeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'tenant_id', type: 'uuid' })
  tenantId: string;

  /** Public part of igw_<keyId>_<secret>. */
  @Column({ name: 'key_id', type: 'text', unique: true })
  keyId: string;

  /** HMAC-SHA256(KEY_PEPPER, secret); the secret itself is never stored. */
  @Column({ name: 'secret_hash', type: 'bytea' })
  secretHash: Buffer;

  @Column({ type: 'text', nullable: true })
  name: string | null;

  @Column({ type: 'text', array: true })
  scopes: string[];

  /** AES-256-GCM `iv | tag | ciphertext` under SECRETS_KEY. */
  @Column({ name: 'signing_key_enc', type: 'bytea' })
  signingKeyEnc: Buffer;

  @Column({ name: 'signing_salt_enc', type: 'bytea' })
  signingSaltEnc: Buffer;

  /** The pair before the last signing rotation: it still verifies until dropped. */
  @Column({ name: 'signing_key_prev_enc', type: 'bytea', nullable: true })
  signingKeyPrevEnc: Buffer | null;

  @Column({ name: 'signing_salt_prev_enc', type: 'bytea', nullable: true })
  signingSaltPrevEnc: Buffer | null;

  @Column({ name: 'signing_rotated_at', type: 'timestamptz', nullable: true })
  signingRotatedAt: Date | null;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;

  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
  lastUsedAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
