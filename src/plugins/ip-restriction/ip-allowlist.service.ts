import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../../audit/audit.service';
import { AuthInvalidationService } from '../../change-bus/auth-invalidation.service';
import { TenantsService } from '../../tenants/tenants.service';
import { normalizeCidr } from './cidr-normalize';
import { IpAllowlistReplaceDto, IpAllowlistResponseDto } from './ip-allowlist.dto';
import { IpAllowlistEntryEntity } from './ip-allowlist.entity';
import { AllowlistEntry, IpAllowlistRepository } from './ip-allowlist.repository';

@Injectable()
export class IpAllowlistService {
  constructor(
    private readonly repository: IpAllowlistRepository,
    private readonly tenants: TenantsService,
    private readonly audit: AuditService,
    private readonly invalidation: AuthInvalidationService,
  ) {}

  async get(tenantId: string): Promise<IpAllowlistResponseDto> {
    await this.tenants.requireExists(tenantId);
    return toResponse(tenantId, await this.repository.list(tenantId));
  }

  /**
   * Replaces the list. Entries are stored in canonical network form and deduplicated (the
   * first description wins), since `10.1.2.3/8` and `10.0.0.0/8` are the same range.
   */
  async replace(request: FastifyRequest, tenantId: string, dto: IpAllowlistReplaceDto): Promise<IpAllowlistResponseDto> {
    const entries = new Map<string, AllowlistEntry>();
    for (const entry of dto.entries) {
      // The DTO validator already refused invalid ranges; normalising cannot fail here.
      const cidr = normalizeCidr(entry.cidr) as string;
      if (!entries.has(cidr)) entries.set(cidr, { cidr, description: entry.description ?? null });
    }
    const response = await this.repository.transaction(async (manager) => {
      await this.tenants.requireForUpdate(tenantId, manager);
      const before = toResponse(tenantId, await this.repository.list(tenantId, manager));
      await this.repository.replace(tenantId, [...entries.values()], manager);
      const after = toResponse(tenantId, await this.repository.list(tenantId, manager));
      await this.audit.record(
        request,
        { action: 'ip_allowlist.replace', targetType: 'ip_allowlist', targetId: tenantId, before: before.entries, after: after.entries },
        manager,
      );
      return after;
    });
    await this.invalidation.publish({ kind: 'tenant', id: tenantId });
    return response;
  }
}

function toResponse(tenantId: string, rows: IpAllowlistEntryEntity[]): IpAllowlistResponseDto {
  return { tenantId, entries: rows.map((row) => ({ cidr: row.cidr, description: row.description, createdAt: row.createdAt })) };
}
