import { rm } from 'node:fs/promises';
import { Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { AuthInvalidationService } from '../change-bus/auth-invalidation.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { tenantFolder } from '../common/tenant-folder';
import { GatewayConfig } from '../config/gateway-config';
import { PlansService } from '../plans/plans.service';
import { applyImagePolicyPatch, cleanImagePolicy, mergeImagePolicy, type ImagePolicyPatch } from '../signing/image-policy';
import { QUOTA_OVERRIDE_FIELDS, RATE_LIMIT_OVERRIDE_FIELDS, applyOverridePatch, mergeLimits } from './effective-limits';
import { TenantCreateDto, TenantListQueryDto, TenantPageDto, TenantResponseDto, TenantUpdateDto } from './tenant.dto';
import { TenantEntity, TenantStatus } from './tenant.entity';
import { TenantFields, TenantsRepository } from './tenants.repository';

@Injectable()
export class TenantsService {
  private readonly logger = new Logger(TenantsService.name);

  constructor(
    private readonly tenants: TenantsRepository,
    private readonly plans: PlansService,
    private readonly audit: AuditService,
    private readonly invalidation: AuthInvalidationService,
    private readonly config: GatewayConfig,
  ) {}

  async create(request: FastifyRequest, dto: TenantCreateDto): Promise<TenantResponseDto> {
    return this.tenants.transaction(async (manager) => {
      const plan = await this.plans.requireByName(dto.plan, manager);
      const tenant = await this.tenants.create({ name: dto.name.trim(), email: dto.email.trim(), planId: plan.id }, manager);
      const response = toTenantResponse(tenant);
      await this.audit.record(request, { action: 'tenant.create', targetType: 'tenant', targetId: tenant.id, after: response }, manager);
      return response;
    });
  }

  async list(query: TenantListQueryDto): Promise<TenantPageDto> {
    let planId: string | undefined;
    if (query.plan) {
      const plan = await this.plans.requireByName(query.plan);
      planId = plan.id;
    }
    const { items, total } = await this.tenants.list({ search: query.search, status: query.status, planId, limit: query.limit, offset: query.offset });
    return { items: items.map(toTenantResponse), total, limit: query.limit, offset: query.offset };
  }

  async get(id: string): Promise<TenantResponseDto> {
    const tenant = await this.tenants.findById(id);
    if (!tenant) throw notFound();
    return toTenantResponse(tenant);
  }

  async update(request: FastifyRequest, id: string, dto: TenantUpdateDto): Promise<TenantResponseDto> {
    return this.change(request, id, 'tenant.update', async (tenant, manager) => {
      const fields: Partial<TenantFields> = {};
      if (dto.name !== undefined) fields.name = dto.name.trim();
      if (dto.email !== undefined) fields.email = dto.email.trim();
      if (dto.status !== undefined) fields.status = dto.status;
      if (dto.plan !== undefined) fields.planId = (await this.plans.requireByName(dto.plan, manager)).id;
      if (dto.allowedSources !== undefined) fields.allowedSources = [...new Set(dto.allowedSources)];
      if (dto.allowUnsignedUrls !== undefined) fields.allowUnsignedUrls = dto.allowUnsignedUrls;
      if (dto.rateLimits !== undefined) fields.rateLimits = applyOverridePatch(tenant.rateLimits, dto.rateLimits, RATE_LIMIT_OVERRIDE_FIELDS);
      if (dto.quotas !== undefined) fields.quotas = applyOverridePatch(tenant.quotas, dto.quotas, QUOTA_OVERRIDE_FIELDS);
      if (dto.imagePolicy !== undefined) {
        fields.imagePolicy = cleanImagePolicy(applyImagePolicyPatch(tenant.imagePolicy, dto.imagePolicy as ImagePolicyPatch | null));
        this.plans.checkImagePolicy(fields.imagePolicy, 'tenant');
        const uploadId = fields.imagePolicy.watermark?.uploadId;
        if (uploadId !== undefined && !(await this.tenants.hasImage(id, uploadId, manager))) {
          throw new GatewayException('validation_failed', 'The request is invalid.', {
            details: [`imagePolicy.watermark.uploadId: no upload ${uploadId} for this tenant`],
          });
        }
      }
      return fields;
    });
  }

  setStatus(request: FastifyRequest, id: string, status: TenantStatus): Promise<TenantResponseDto> {
    return this.change(request, id, status === 'suspended' ? 'tenant.suspend' : 'tenant.reactivate', async () => ({ status }));
  }

  async delete(request: FastifyRequest, id: string): Promise<void> {
    await this.tenants.transaction(async (manager) => {
      const tenant = await this.tenants.findByIdForUpdate(id, manager);
      if (!tenant) throw notFound();
      await this.tenants.delete(id, manager);
      await this.audit.record(request, { action: 'tenant.delete', targetType: 'tenant', targetId: id, before: toTenantResponse(tenant) }, manager);
    });
    await this.invalidation.publish({ kind: 'tenant', id });
    // The rows are gone (images cascade with the tenant); its files go too, after the commit, so a
    // rolled-back delete never loses a file. A failure here leaves only unreferenced files.
    await rm(tenantFolder(this.config.uploads.root, id), { recursive: true, force: true }).catch((error: Error) =>
      this.logger.warn(`uploads of deleted tenant ${id} not removed: ${error.message}`),
    );
  }

  /**
   * For the modules that hang things off a tenant (keys, allowlist): the tenant row, locked
   * until the caller's transaction ends so it cannot be deleted meanwhile; 404 when absent.
   */
  async requireForUpdate(id: string, manager: EntityManager): Promise<TenantEntity> {
    const tenant = await this.tenants.findByIdForUpdate(id, manager);
    if (!tenant) throw notFound();
    return tenant;
  }

  async requireExists(id: string): Promise<TenantEntity> {
    const tenant = await this.tenants.findById(id);
    if (!tenant) throw notFound();
    return tenant;
  }

  /** One audited, invalidating change: lock, compute the new fields, write, record before/after. */
  private async change(
    request: FastifyRequest,
    id: string,
    action: string,
    compute: (tenant: TenantEntity, manager: EntityManager) => Promise<Partial<TenantFields>>,
  ): Promise<TenantResponseDto> {
    const response = await this.tenants.transaction(async (manager) => {
      const tenant = await this.tenants.findByIdForUpdate(id, manager);
      if (!tenant) throw notFound();
      const before = toTenantResponse(tenant);
      const fields = await compute(tenant, manager);
      const updated = Object.keys(fields).length ? await this.tenants.update(id, fields, manager) : tenant;
      const after = toTenantResponse(updated);
      await this.audit.record(request, { action, targetType: 'tenant', targetId: id, before, after }, manager);
      return after;
    });
    await this.invalidation.publish({ kind: 'tenant', id });
    return response;
  }
}

function notFound(): GatewayException {
  return new GatewayException('not_found', 'No such tenant.');
}

export function toTenantResponse(tenant: TenantEntity): TenantResponseDto {
  const plan = tenant.plan;
  if (!plan) throw new Error('tenant loaded without its plan');
  return {
    id: tenant.id,
    name: tenant.name,
    email: tenant.email,
    plan: plan.name,
    status: tenant.status,
    allowedSources: tenant.allowedSources,
    allowUnsignedUrls: tenant.allowUnsignedUrls,
    rateLimits: tenant.rateLimits,
    quotas: tenant.quotas,
    limits: mergeLimits(plan, tenant.rateLimits, tenant.quotas),
    imagePolicy: tenant.imagePolicy,
    effectiveImagePolicy: mergeImagePolicy(plan.imagePolicy, tenant.imagePolicy),
    createdAt: tenant.createdAt,
    updatedAt: tenant.updatedAt,
  };
}
