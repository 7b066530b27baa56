import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { AuditLogEntity } from './audit-log.entity';

export interface AuditEntry {
  actor: string;
  action: string;
  targetType: string;
  targetId?: string | null;
  before?: unknown;
  after?: unknown;
  requestId?: string | null;
  clientIp?: string | null;
}

export interface AuditQuery {
  targetType?: string;
  targetId?: string;
  from?: Date;
  to?: Date;
  limit: number;
  offset: number;
}

@Injectable()
export class AuditLogRepository {
  constructor(@InjectRepository(AuditLogEntity) private readonly repo: Repository<AuditLogEntity>) {}

  /** Pass the caller's transaction manager so the audit row commits or rolls back with the change. */
  async append(entry: AuditEntry, manager?: EntityManager): Promise<void> {
    const runner = manager ?? this.repo.manager;
    await runner.query(
      `INSERT INTO audit_log (actor, action, target_type, target_id, before, after, request_id, client_ip)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::inet)`,
      [
        entry.actor,
        entry.action,
        entry.targetType,
        entry.targetId ?? null,
        entry.before == null ? null : JSON.stringify(entry.before),
        entry.after == null ? null : JSON.stringify(entry.after),
        entry.requestId ?? null,
        entry.clientIp || null,
      ],
    );
  }

  async find(query: AuditQuery): Promise<{ items: AuditLogEntity[]; total: number }> {
    const qb = this.repo.createQueryBuilder('a').orderBy('a.created_at', 'DESC').addOrderBy('a.id', 'DESC');
    if (query.targetType) qb.andWhere('a.target_type = :targetType', { targetType: query.targetType });
    if (query.targetId) qb.andWhere('a.target_id = :targetId', { targetId: query.targetId });
    if (query.from) qb.andWhere('a.created_at >= :from', { from: query.from });
    if (query.to) qb.andWhere('a.created_at < :to', { to: query.to });
    const [items, total] = await qb.take(query.limit).skip(query.offset).getManyAndCount();
    return { items, total };
  }
}
