import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { GatewayException } from '../common/errors/gateway.exception';
import { TenantEntity, TenantStatus } from './tenant.entity';
import { isUniqueViolation } from '../database/unique-violation';

export type TenantFields = Pick<
  TenantEntity,
  'name' | 'email' | 'planId' | 'status' | 'rateLimits' | 'quotas' | 'allowedSources' | 'allowUnsignedUrls' | 'imagePolicy'
>;

export interface TenantQuery {
  /** Case-insensitive substring of the name or the email. */
  search?: string;
  status?: TenantStatus;
  planId?: string;
  limit: number;
  offset: number;
}

@Injectable()
export class TenantsRepository {
  constructor(@InjectRepository(TenantEntity) private readonly repo: Repository<TenantEntity>) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.repo.manager.transaction(work);
  }

  findById(id: string, manager?: EntityManager): Promise<TenantEntity | null> {
    return this.of(manager).findOne({ where: { id }, relations: { plan: true } });
  }

  /** Locks the tenant row for the rest of the caller's transaction (or returns null). */
  async findByIdForUpdate(id: string, manager: EntityManager): Promise<TenantEntity | null> {
    const rows: unknown[] = await manager.query('SELECT id FROM tenants WHERE id = $1 FOR UPDATE', [id]);
    return rows.length ? this.findById(id, manager) : null;
  }

  async list(query: TenantQuery): Promise<{ items: TenantEntity[]; total: number }> {
    const qb = this.repo
      .createQueryBuilder('t')
      .innerJoinAndSelect('t.plan', 'plan')
      .orderBy('t.created_at', 'ASC')
      .addOrderBy('t.id', 'ASC');
    if (query.search) {
      const pattern = `%${query.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      qb.andWhere('(lower(t.name) LIKE :pattern OR lower(t.email) LIKE :pattern)', { pattern });
    }
    if (query.status) qb.andWhere('t.status = :status', { status: query.status });
    if (query.planId) qb.andWhere('t.plan_id = :planId', { planId: query.planId });
    const [items, total] = await qb.take(query.limit).skip(query.offset).getManyAndCount();
    return { items, total };
  }

  async create(fields: Partial<TenantFields>, manager: EntityManager): Promise<TenantEntity> {
    try {
      const saved = await this.of(manager).save(this.of(manager).create(fields));
      return (await this.findById(saved.id, manager)) as TenantEntity;
    } catch (error) {
      throw translate(error);
    }
  }

  async update(id: string, fields: Partial<TenantFields>, manager: EntityManager): Promise<TenantEntity> {
    try {
      await this.of(manager).update({ id }, fields);
      return (await this.findById(id, manager)) as TenantEntity;
    } catch (error) {
      throw translate(error);
    }
  }

  /** Whether the tenant has an upload with this id (a watermark image must be one of its own). */
  async hasImage(tenantId: string, imageId: string, manager: EntityManager): Promise<boolean> {
    const rows: unknown[] = await manager.query('SELECT 1 FROM images WHERE tenant_id = $1 AND id = $2', [tenantId, imageId]);
    return rows.length > 0;
  }

  /**
   * Keys, allowlist, usage and images go with the row (foreign keys cascade); request_logs
   * has no foreign key on purpose (batches must never fail on a deleted tenant), so its rows
   * are deleted here, in the same transaction.
   */
  async delete(id: string, manager: EntityManager): Promise<void> {
    await manager.query('DELETE FROM request_logs WHERE tenant_id = $1', [id]);
    await manager.query('DELETE FROM tenants WHERE id = $1', [id]);
  }

  private of(manager?: EntityManager): Repository<TenantEntity> {
    return manager ? manager.getRepository(TenantEntity) : this.repo;
  }
}

function translate(error: unknown): unknown {
  if (isUniqueViolation(error)) {
    return new GatewayException('conflict', 'A tenant with this email already exists.');
  }
  return error;
}
