import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { EntityManager } from 'typeorm';
import { AuditService } from '../../audit/audit.service';
import { GatewayException } from '../../common/errors/gateway.exception';
import { TenantsService } from '../../tenants/tenants.service';
import { generateApiKey, generateSigningSecret, hashSecret, maskApiKey } from './api-key-format';
import { DEFAULT_API_KEY_SCOPES } from './api-key-scopes';
import { ApiKeyCreateDto, ApiKeyCreatedDto, ApiKeyResponseDto, ApiKeyRotateDto, ApiKeyRotatedDto, ApiKeySigningRotatedDto } from './api-key.dto';
import { ApiKeyEntity } from './api-key.entity';
import { ApiKeyService } from './api-key.service';
import { ApiKeysRepository } from './api-keys.repository';
import { AuthInvalidationService } from '../../change-bus/auth-invalidation.service';
import { GatewayConfig } from '../../config/gateway-config';

const DEFAULT_GRACE_SECONDS = 86_400;

/** The admin side of keys: create (secret shown once), list masked, revoke, rotate. */
@Injectable()
export class ApiKeyAdminService {
  private readonly pepper: string;

  constructor(
    private readonly repository: ApiKeysRepository,
    private readonly tenants: TenantsService,
    private readonly keys: ApiKeyService,
    private readonly audit: AuditService,
    private readonly invalidation: AuthInvalidationService,
    config: GatewayConfig,
  ) {
    this.pepper = config.security.keyPepper as string;
  }

  async create(request: FastifyRequest, tenantId: string, dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    assertFuture(dto.expiresAt);
    const created = await this.repository.transaction(async (manager) => {
      await this.tenants.requireForUpdate(tenantId, manager);
      const result = await this.insert(tenantId, dto.name ?? null, dto.scopes ?? [...DEFAULT_API_KEY_SCOPES], dto.expiresAt ?? null, manager);
      await this.audit.record(request, { action: 'api_key.create', targetType: 'api_key', targetId: result.keyId, after: snapshot(result.entity) }, manager);
      return result;
    });
    // Drops a negative-cache entry, should anyone have probed this key id before it existed.
    await this.invalidation.publish({ kind: 'key', id: created.keyId });
    return created.response;
  }

  async list(tenantId: string): Promise<ApiKeyResponseDto[]> {
    await this.tenants.requireExists(tenantId);
    return (await this.repository.listByTenant(tenantId)).map(toMasked);
  }

  async get(tenantId: string, keyId: string): Promise<ApiKeyResponseDto> {
    await this.tenants.requireExists(tenantId);
    const key = await this.repository.findForTenant(tenantId, keyId);
    if (!key) throw keyNotFound();
    return toMasked(key);
  }

  /** Idempotent: revoking a revoked key changes nothing and records nothing. */
  async revoke(request: FastifyRequest, tenantId: string, keyId: string): Promise<void> {
    await this.repository.transaction(async (manager) => {
      await this.tenants.requireForUpdate(tenantId, manager);
      const key = await this.repository.findForTenant(tenantId, keyId, manager);
      if (!key) throw keyNotFound();
      if (key.revokedAt) return;
      await this.repository.revoke(tenantId, keyId, manager);
      const after = await this.repository.findForTenant(tenantId, keyId, manager);
      await this.audit.record(request, { action: 'api_key.revoke', targetType: 'api_key', targetId: keyId, before: snapshot(key), after: snapshot(after as ApiKeyEntity) }, manager);
    });
    await this.invalidation.publish({ kind: 'key', id: keyId });
  }

  /**
   * A new key (same name and scopes unless given) and a deadline for the old one: now plus
   * the grace period, or its own earlier expiry. Both keys work until then, so clients can
   * switch without downtime.
   */
  async rotate(request: FastifyRequest, tenantId: string, keyId: string, dto: ApiKeyRotateDto): Promise<ApiKeyRotatedDto> {
    assertFuture(dto.expiresAt);
    const grace = dto.gracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
    const rotated = await this.repository.transaction(async (manager) => {
      await this.tenants.requireForUpdate(tenantId, manager);
      const old = await this.repository.findForTenant(tenantId, keyId, manager);
      if (!old) throw keyNotFound();
      if (old.revokedAt) throw new GatewayException('conflict', 'A revoked key cannot be rotated; create a new key instead.');
      const deadline = new Date(Date.now() + grace * 1000);
      const oldExpiresAt = old.expiresAt && old.expiresAt < deadline ? old.expiresAt : deadline;
      await this.repository.setExpiry(tenantId, keyId, oldExpiresAt, manager);
      const fresh = await this.insert(tenantId, dto.name ?? old.name, dto.scopes ?? old.scopes, dto.expiresAt ?? null, manager);
      await this.audit.record(
        request,
        {
          action: 'api_key.rotate',
          targetType: 'api_key',
          targetId: keyId,
          before: snapshot(old),
          after: { ...snapshot(old), expiresAt: oldExpiresAt, replacedBy: fresh.keyId, replacement: snapshot(fresh.entity) },
        },
        manager,
      );
      return { ...fresh, previous: { keyId, expiresAt: oldExpiresAt } };
    });
    await this.invalidation.publish({ kind: 'key', id: keyId }, { kind: 'key', id: rotated.keyId });
    return { ...rotated.response, previous: rotated.previous };
  }

  /**
   * A new current URL-signing pair; the current one becomes the previous one and keeps verifying
   * until dropped, so signed URLs already handed out keep working while clients switch. The new
   * pair is in this answer only.
   */
  async rotateSigning(request: FastifyRequest, tenantId: string, keyId: string): Promise<ApiKeySigningRotatedDto> {
    const signingKey = generateSigningSecret();
    const signingSalt = generateSigningSecret();
    const rotated = await this.repository.transaction(async (manager) => {
      await this.tenants.requireForUpdate(tenantId, manager);
      const key = await this.repository.findForTenant(tenantId, keyId, manager);
      if (!key) throw keyNotFound();
      if (key.revokedAt) throw new GatewayException('conflict', 'A revoked key cannot be rotated; create a new key instead.');
      await this.repository.rotateSigning(
        tenantId,
        keyId,
        { signingKeyEnc: this.keys.sealSigningSecret(keyId, 'key', signingKey), signingSaltEnc: this.keys.sealSigningSecret(keyId, 'salt', signingSalt) },
        manager,
      );
      const after = (await this.repository.findForTenant(tenantId, keyId, manager)) as ApiKeyEntity;
      await this.audit.record(request, { action: 'api_key.rotate_signing', targetType: 'api_key', targetId: keyId, before: snapshot(key), after: snapshot(after) }, manager);
      return after;
    });
    await this.invalidation.publish({ kind: 'key', id: keyId });
    return {
      keyId,
      signingKey: signingKey.toString('hex'),
      signingSalt: signingSalt.toString('hex'),
      signingRotatedAt: rotated.signingRotatedAt as Date,
      previousSigningValid: true,
    };
  }

  /** Ends a signing rotation: only the current pair verifies from now on. Idempotent. */
  async dropPreviousSigning(request: FastifyRequest, tenantId: string, keyId: string): Promise<void> {
    const changed = await this.repository.transaction(async (manager) => {
      await this.tenants.requireForUpdate(tenantId, manager);
      const key = await this.repository.findForTenant(tenantId, keyId, manager);
      if (!key) throw keyNotFound();
      if (!key.signingKeyPrevEnc) return false;
      await this.repository.dropPreviousSigning(tenantId, keyId, manager);
      const after = (await this.repository.findForTenant(tenantId, keyId, manager)) as ApiKeyEntity;
      await this.audit.record(request, { action: 'api_key.drop_previous_signing', targetType: 'api_key', targetId: keyId, before: snapshot(key), after: snapshot(after) }, manager);
      return true;
    });
    if (changed) await this.invalidation.publish({ kind: 'key', id: keyId });
  }

  private async insert(tenantId: string, name: string | null, scopes: string[], expiresAt: Date | null, manager: EntityManager) {
    const generated = generateApiKey();
    const signingKey = generateSigningSecret();
    const signingSalt = generateSigningSecret();
    const entity = await this.repository.create(
      {
        tenantId,
        keyId: generated.keyId,
        secretHash: hashSecret(this.pepper, generated.secret),
        name,
        scopes,
        signingKeyEnc: this.keys.sealSigningSecret(generated.keyId, 'key', signingKey),
        signingSaltEnc: this.keys.sealSigningSecret(generated.keyId, 'salt', signingSalt),
        expiresAt,
      },
      manager,
    );
    const response: ApiKeyCreatedDto = {
      tenantId,
      keyId: generated.keyId,
      key: generated.key,
      signingKey: signingKey.toString('hex'),
      signingSalt: signingSalt.toString('hex'),
      name: entity.name,
      scopes: entity.scopes,
      expiresAt: entity.expiresAt,
      createdAt: entity.createdAt,
    };
    return { keyId: generated.keyId, entity, response };
  }
}

function assertFuture(expiresAt: Date | null | undefined): void {
  if (expiresAt && expiresAt.getTime() <= Date.now()) {
    throw new GatewayException('validation_failed', 'The request is invalid.', { details: ['expiresAt must be in the future'] });
  }
}

function keyNotFound(): GatewayException {
  return new GatewayException('not_found', 'No such key for this tenant.');
}

/** What the audit log keeps about a key: never the hash or the sealed signing material. */
function snapshot(key: ApiKeyEntity) {
  return {
    keyId: key.keyId,
    tenantId: key.tenantId,
    name: key.name,
    scopes: key.scopes,
    expiresAt: key.expiresAt,
    revokedAt: key.revokedAt,
    signingRotatedAt: key.signingRotatedAt,
    previousSigningValid: key.signingKeyPrevEnc !== null,
  };
}

function toMasked(key: ApiKeyEntity): ApiKeyResponseDto {
  const status = key.revokedAt ? 'revoked' : key.expiresAt && key.expiresAt.getTime() <= Date.now() ? 'expired' : 'active';
  return {
    keyId: key.keyId,
    maskedKey: maskApiKey(key.keyId),
    name: key.name,
    scopes: key.scopes,
    status,
    expiresAt: key.expiresAt,
    revokedAt: key.revokedAt,
    lastUsedAt: key.lastUsedAt,
    signingRotatedAt: key.signingRotatedAt,
    previousSigningValid: key.signingKeyPrevEnc !== null,
    createdAt: key.createdAt,
  };
}
