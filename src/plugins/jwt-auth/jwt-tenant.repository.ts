import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { TENANT_CALLER_COLUMNS, type TenantCallerRecord, type TenantCallerRow, tenantCallerOf } from '../../tenants/tenant-caller';
import { TenantEntity } from '../../tenants/tenant.entity';

/** Everything the request path needs about a JWT caller's tenant, its plan and allowlist. */
export type JwtTenantRecord = TenantCallerRecord;

@Injectable()
export class JwtTenantRepository {
  private lookups = 0;

  constructor(@InjectRepository(TenantEntity) private readonly repo: Repository<TenantEntity>) {}

  /** Lookups made since start (what the tenant cache is there to save). */
  get lookupCount(): number {
    return this.lookups;
  }

  /**
   * The cache-miss lookup, in one round trip: the tenant with its plan and allowlist (a read
   * model of three tables, like the API-key lookup). `tenantId` must be a uuid.
   */
  async findAuthRecord(tenantId: string): Promise<JwtTenantRecord | undefined> {
    this.lookups++;
    const rows: TenantCallerRow[] = await this.repo.query(
      `SELECT ${TENANT_CALLER_COLUMNS}
         FROM tenants t
         JOIN plans p ON p.id = t.plan_id
        WHERE t.id = $1`,
      [tenantId],
    );
    const row = rows[0];
    return row ? tenantCallerOf(row) : undefined;
  }
}
