import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { GatewayException } from '../common/errors/gateway.exception';
import { PlanEntity } from './plan.entity';
import { isUniqueViolation } from '../database/unique-violation';

export type PlanFields = Omit<PlanEntity, 'id' | 'createdAt' | 'updatedAt'>;

@Injectable()
export class PlansRepository {
  constructor(@InjectRepository(PlanEntity) private readonly repo: Repository<PlanEntity>) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.repo.manager.transaction(work);
  }

  list(): Promise<PlanEntity[]> {
    return this.repo.find({ order: { name: 'ASC' } });
  }

  findById(id: string, manager?: EntityManager): Promise<PlanEntity | null> {
    return this.of(manager).findOne({ where: { id } });
  }

  /** With `lock`, the row stays locked until the caller's transaction ends (consistent before/after). */
  findByIdForUpdate(id: string, manager: EntityManager): Promise<PlanEntity | null> {
    return manager.getRepository(PlanEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  }

  findByName(name: string, manager?: EntityManager): Promise<PlanEntity | null> {
    return this.of(manager).findOne({ where: { name } });
  }

  async create(fields: PlanFields, manager: EntityManager): Promise<PlanEntity> {
    try {
      return await this.of(manager).save(this.of(manager).create(fields));
    } catch (error) {
      throw translate(error);
    }
  }

  async update(plan: PlanEntity, fields: Partial<PlanFields>, manager: EntityManager): Promise<PlanEntity> {
    try {
      return await this.of(manager).save({ ...plan, ...fields });
    } catch (error) {
      throw translate(error);
    }
  }

  /**
   * Config seeds: inserted or brought in line with the config by name, in one statement so
   * instances starting together cannot race each other. True when a row was written.
   */
  async upsertByName(fields: PlanFields): Promise<boolean> {
    const rows: unknown[] = await this.repo.query(
      `INSERT INTO plans (name, description, rate_per_minute, rate_per_hour, burst, monthly_requests, daily_requests,
                          monthly_bandwidth_bytes, storage_bytes, image_policy)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (name) DO UPDATE SET
         description = EXCLUDED.description, rate_per_minute = EXCLUDED.rate_per_minute,
         rate_per_hour = EXCLUDED.rate_per_hour, burst = EXCLUDED.burst,
         monthly_requests = EXCLUDED.monthly_requests, daily_requests = EXCLUDED.daily_requests,
         monthly_bandwidth_bytes = EXCLUDED.monthly_bandwidth_bytes, storage_bytes = EXCLUDED.storage_bytes,
         image_policy = EXCLUDED.image_policy, updated_at = now()
       WHERE (plans.description, plans.rate_per_minute, plans.rate_per_hour, plans.burst, plans.monthly_requests,
              plans.daily_requests, plans.monthly_bandwidth_bytes, plans.storage_bytes, plans.image_policy)
             IS DISTINCT FROM
             (EXCLUDED.description, EXCLUDED.rate_per_minute, EXCLUDED.rate_per_hour, EXCLUDED.burst,
              EXCLUDED.monthly_requests, EXCLUDED.daily_requests, EXCLUDED.monthly_bandwidth_bytes, EXCLUDED.storage_bytes,
              EXCLUDED.image_policy)
       RETURNING id`,
      [
        fields.name,
        fields.description,
        fields.perMinute,
        fields.perHour,
        fields.burst,
        fields.monthlyRequests,
        fields.dailyRequests,
        fields.monthlyBandwidthBytes,
        fields.storageBytes,
        JSON.stringify(fields.imagePolicy),
      ],
    );
    return rows.length > 0;
  }

  private of(manager?: EntityManager): Repository<PlanEntity> {
    return manager ? manager.getRepository(PlanEntity) : this.repo;
  }
}

function translate(error: unknown): unknown {
  if (isUniqueViolation(error)) {
    return new GatewayException('conflict', 'A plan with this name already exists.');
  }
  return error;
}
