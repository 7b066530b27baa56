import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../../audit/audit.service';
import type { AuthContext } from '../../gateway/caller';
import { TenantsService } from '../../tenants/tenants.service';
import type { CacheAdminPurgeDto, CachePurgeDto, CachePurgeResponseDto } from './cache-purge.dto';
import { CachePurgeService } from './cache-purge.service';
import { normalizeSourcePrefix } from './cache-source';

/** The purge endpoints' logic: who may purge what, and the audit record of an admin's purge. */
@Injectable()
export class CachePurgeRequests {
  constructor(
    private readonly purges: CachePurgeService,
    private readonly tenants: TenantsService,
    private readonly audit: AuditService,
  ) {}

  async forTenant(auth: AuthContext, dto: CachePurgeDto): Promise<CachePurgeResponseDto> {
    return this.run(auth.tenantId, dto.prefix);
  }

  /** Audited before it runs, so a purge that then fails to reach every instance is on record too. */
  async forAdmin(request: FastifyRequest, dto: CacheAdminPurgeDto): Promise<CachePurgeResponseDto> {
    await this.tenants.requireExists(dto.tenantId);
    const prefix = dto.prefix ? normalizeSourcePrefix(dto.prefix) : null;
    await this.audit.record(request, { action: 'cache.purge', targetType: 'tenant', targetId: dto.tenantId, after: { prefix } });
    return this.run(dto.tenantId, dto.prefix);
  }

  private async run(tenantId: string, prefix: string | undefined): Promise<CachePurgeResponseDto> {
    const dropped = await this.purges.purge({ tenantId, prefix });
    return { tenantId, prefix: prefix ? normalizeSourcePrefix(prefix) : null, dropped };
  }
}
