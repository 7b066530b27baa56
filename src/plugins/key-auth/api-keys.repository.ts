import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import type { ImagePolicy } from '../../signing/image-policy';
import { TENANT_CALLER_COLUMNS, type TenantCallerRecord, type TenantCallerRow, tenantCallerOf } from '../../tenants/tenant-caller';
import { ApiKeyEntity } from './api-key.entity';

export type ApiKeyFields = Pick<ApiKeyEntity, 'tenantId' | 'keyId' | 'secretHash' | 'name' | 'scopes' | 'signingKeyEnc' | 'signingSaltEnc' | 'expiresAt'>;

/** Everything the request path needs about a key, its tenant, plan and allowlist. */
export interface KeyAuthRecord extends TenantCallerRecord {
  keyId: string;
  secretHash: Buffer;
  scopes: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  signingKeyEnc: Buffer;
  signingSaltEnc: Buffer;
  /** The pair before the last signing rotation, until it is dropped. */
  signingKeyPrevEnc: Buffer | null;
  signingSaltPrevEnc: Buffer | null;
  tenantImagePolicy: ImagePolicy;
  /** File name of the tenant's watermark upload, when its policy names one that exists. */
  watermarkFile: string | null;
  planImagePolicy: ImagePolicy;
}

/** A signing rotation: the new pair becomes current, the current one previous. */
export interface SigningPairFields {
  signingKeyEnc: Buffer;
  signingSaltEnc: Buffer;
}

interface KeyAuthRow extends TenantCallerRow {
  key_id: string;
  secret_hash: Buffer;
  scopes: string[];
  expires_at: Date | null;
  revoked_at: Date | null;
  signing_key_enc: Buffer;
  signing_salt_enc: Buffer;
  signing_key_prev_enc: Buffer | null;
  signing_salt_prev_enc: Buffer | null;
  tenant_image_policy: ImagePolicy;
  watermark_file: string | null;
  plan_image_policy: ImagePolicy;
}

@Injectable()
export class ApiKeysRepository {
  private authLookups = 0;

  constructor(@InjectRepository(ApiKeyEntity) private readonly repo: Repository<ApiKeyEntity>) {}

  /** Key lookups made for authentication since start (what the key caches are there to save). */
  get authLookupCount(): number {
    return this.authLookups;
  }

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.repo.manager.transaction(work);
  }

  async create(fields: ApiKeyFields, manager: EntityManager): Promise<ApiKeyEntity> {
    const repo = manager.getRepository(ApiKeyEntity);
    return repo.save(repo.create(fields));
  }

  listByTenant(tenantId: string): Promise<ApiKeyEntity[]> {
    return this.repo.find({ where: { tenantId }, order: { createdAt: 'ASC', keyId: 'ASC' } });
  }

  findForTenant(tenantId: string, keyId: string, manager?: EntityManager): Promise<ApiKeyEntity | null> {
    return (manager ? manager.getRepository(ApiKeyEntity) : this.repo).findOne({ where: { tenantId, keyId } });
  }

  async revoke(tenantId: string, keyId: string, manager: EntityManager): Promise<void> {
    await manager.getRepository(ApiKeyEntity).update({ tenantId, keyId }, { revokedAt: () => 'now()' });
  }

  /** The new pair becomes current and the current one previous (an older previous one is dropped). */
  async rotateSigning(tenantId: string, keyId: string, pair: SigningPairFields, manager: EntityManager): Promise<void> {
    await manager.query(
      `UPDATE api_keys
          SET signing_key_prev_enc = signing_key_enc, signing_salt_prev_enc = signing_salt_enc,
              signing_key_enc = $3, signing_salt_enc = $4, signing_rotated_at = now()
        WHERE tenant_id = $1 AND key_id = $2`,
      [tenantId, keyId, pair.signingKeyEnc, pair.signingSaltEnc],
    );
  }

  async dropPreviousSigning(tenantId: string, keyId: string, manager: EntityManager): Promise<void> {
    await manager.getRepository(ApiKeyEntity).update({ tenantId, keyId }, { signingKeyPrevEnc: null, signingSaltPrevEnc: null });
  }

  async setExpiry(tenantId: string, keyId: string, expiresAt: Date, manager: EntityManager): Promise<void> {
    await manager.getRepository(ApiKeyEntity).update({ tenantId, keyId }, { expiresAt });
  }

  /**
   * The cache-miss lookup of the request path, in one round trip: the key with its tenant,
   * plan and allowlist. It reads those tables directly (a read model) rather than asking three
   * modules for three queries.
   */
  async findAuthRecord(keyId: string): Promise<KeyAuthRecord | undefined> {
    this.authLookups++;
    const rows: KeyAuthRow[] = await this.repo.query(
      `SELECT k.key_id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at, k.signing_key_enc, k.signing_salt_enc,
              k.signing_key_prev_enc, k.signing_salt_prev_enc,
              ${TENANT_CALLER_COLUMNS},
              t.image_policy AS tenant_image_policy, p.image_policy AS plan_image_policy,
              (SELECT i.file_name FROM images i
                WHERE i.tenant_id = t.id AND i.id::text = t.image_policy #>> '{watermark,uploadId}') AS watermark_file
         FROM api_keys k
         JOIN tenants t ON t.id = k.tenant_id
         JOIN plans p ON p.id = t.plan_id
        WHERE k.key_id = $1`,
      [keyId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      ...tenantCallerOf(row),
      keyId: row.key_id,
      secretHash: row.secret_hash,
      scopes: row.scopes,
      expiresAt: row.expires_at,
      revokedAt: row.revoked_at,
      signingKeyEnc: row.signing_key_enc,
      signingSaltEnc: row.signing_salt_enc,
      signingKeyPrevEnc: row.signing_key_prev_enc,
      signingSaltPrevEnc: row.signing_salt_prev_enc,
      tenantImagePolicy: row.tenant_image_policy,
      watermarkFile: row.watermark_file,
      planImagePolicy: row.plan_image_policy,
    };
  }

  /** One statement for every key used since the last flush. */
  async touchLastUsed(keyIds: string[]): Promise<void> {
    if (keyIds.length === 0) return;
    await this.repo.query('UPDATE api_keys SET last_used_at = now() WHERE key_id = ANY($1::text[])', [keyIds]);
  }
}
