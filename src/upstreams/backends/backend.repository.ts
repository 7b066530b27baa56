import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { BackendEntity } from './backend.entity';
import { isUniqueViolation } from '../../database/unique-violation';

export interface BackendFields {
  name: string;
  url: string;
  weight: number;
  enabled: boolean;
  pool: string;
}

/** A write would give two backends the same name (the unique index refused it). */
export class DuplicateBackendNameError extends Error {
  constructor(readonly backendName: string) {
    super(`a backend named ${backendName} already exists`);
  }
}

/** The only code that touches the `backends` table. */
@Injectable()
export class BackendRepository {
  constructor(@InjectRepository(BackendEntity) private readonly repo: Repository<BackendEntity>) {}

  /** Runs `work` in one transaction; pass the manager to the writes and to AuditService.record. */
  inTransaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.repo.manager.transaction(work);
  }

  /** Every backend, in a stable order (pools, then names), for the in-memory pools. */
  listAll(): Promise<BackendEntity[]> {
    return this.repo.find({ order: { pool: 'ASC', name: 'ASC' } });
  }

  findById(id: string, manager?: EntityManager): Promise<BackendEntity | null> {
    return this.repository(manager).findOne({ where: { id } });
  }

  /** Row-locked read, so two concurrent admin edits of one backend audit a true before/after. */
  findByIdForUpdate(id: string, manager: EntityManager): Promise<BackendEntity | null> {
    return manager.getRepository(BackendEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  }

  async create(fields: BackendFields, manager: EntityManager): Promise<BackendEntity> {
    const repo = this.repository(manager);
    try {
      const { id } = await repo.save(repo.create(fields));
      // Read back, so defaults the table fills in (is_healthy, timestamps) are in the answer.
      return await repo.findOneByOrFail({ id });
    } catch (error) {
      throw translateUniqueViolation(error, fields.name);
    }
  }

  async update(entity: BackendEntity, changes: Partial<BackendFields>, manager: EntityManager): Promise<BackendEntity> {
    const repo = this.repository(manager);
    try {
      return await repo.save(repo.merge(entity, changes));
    } catch (error) {
      throw translateUniqueViolation(error, changes.name ?? entity.name);
    }
  }

  async delete(id: string, manager: EntityManager): Promise<void> {
    await this.repository(manager).delete({ id });
  }

  /**
   * Upserts configured backends by name (docs/proxy-and-backends.md: configuration wins for the fields it names).
   * Rows are only touched when a field differs, so restarting N instances with the same config
   * changes nothing. Returns how many rows were inserted or changed.
   */
  async upsertByName(seeds: readonly BackendFields[]): Promise<number> {
    let changed = 0;
    for (const seed of seeds) {
      const rows: unknown[] = await this.repo.query(
        `INSERT INTO backends (name, url, weight, enabled, pool) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE
           SET url = EXCLUDED.url, weight = EXCLUDED.weight, enabled = EXCLUDED.enabled, pool = EXCLUDED.pool, updated_at = now()
         WHERE (backends.url, backends.weight, backends.enabled, backends.pool)
               IS DISTINCT FROM (EXCLUDED.url, EXCLUDED.weight, EXCLUDED.enabled, EXCLUDED.pool)
         RETURNING id`,
        [seed.name, seed.url, seed.weight, seed.enabled, seed.pool],
      );
      changed += rows.length;
    }
    return changed;
  }

  /** One active-check transition (docs/proxy-and-backends.md: `is_healthy` and `last_health_check`). */
  async recordHealth(id: string, healthy: boolean, checkedAt: Date): Promise<void> {
    await this.repo.query(`UPDATE backends SET is_healthy = $2, last_health_check = $3 WHERE id = $1`, [id, healthy, checkedAt]);
  }

  /** One statement per check round: when these backends were last checked. */
  async recordChecked(ids: readonly string[], checkedAt: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.repo.query(`UPDATE backends SET last_health_check = $2 WHERE id = ANY($1::uuid[])`, [ids, checkedAt]);
  }

  private repository(manager?: EntityManager): Repository<BackendEntity> {
    return manager ? manager.getRepository(BackendEntity) : this.repo;
  }
}

function translateUniqueViolation(error: unknown, name: string): unknown {
  return isUniqueViolation(error) ? new DuplicateBackendNameError(name) : error;
}
