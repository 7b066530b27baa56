import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { IpAllowlistEntryEntity } from './ip-allowlist.entity';

export interface AllowlistEntry {
  /** Canonical network form (see normalizeCidr). */
  cidr: string;
  description: string | null;
}

@Injectable()
export class IpAllowlistRepository {
  constructor(@InjectRepository(IpAllowlistEntryEntity) private readonly repo: Repository<IpAllowlistEntryEntity>) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.repo.manager.transaction(work);
  }

  list(tenantId: string, manager?: EntityManager): Promise<IpAllowlistEntryEntity[]> {
    return (manager ? manager.getRepository(IpAllowlistEntryEntity) : this.repo).find({
      where: { tenantId },
      order: { createdAt: 'ASC', cidr: 'ASC' },
    });
  }

  async cidrsOf(tenantId: string): Promise<string[]> {
    const rows: Array<{ cidr: string }> = await this.repo.query('SELECT cidr::text AS cidr FROM ip_allowlist WHERE tenant_id = $1', [tenantId]);
    return rows.map((row) => row.cidr);
  }

  /** The whole list at once: the caller holds the tenant row lock, so two replacements serialise. */
  async replace(tenantId: string, entries: AllowlistEntry[], manager: EntityManager): Promise<void> {
    await manager.query('DELETE FROM ip_allowlist WHERE tenant_id = $1', [tenantId]);
    if (entries.length === 0) return;
    await manager.query(
      `INSERT INTO ip_allowlist (tenant_id, cidr, description)
       SELECT $1, e.cidr::cidr, e.description FROM unnest($2::text[], $3::text[]) AS e(cidr, description)`,
      [tenantId, entries.map((e) => e.cidr), entries.map((e) => e.description)],
    );
  }
}
