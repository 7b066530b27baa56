import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { ImageEntity } from './image.entity';

export interface StoredImage {
  id: string;
  tenantId: string;
  fileName: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
  width: number | null;
  height: number | null;
  originalName: string | null;
  createdAt: Date;
}

export type NewImage = Omit<StoredImage, 'createdAt'>;

/** The storage quota refused the insert: `usedBytes` were stored when it was checked. */
export class StorageQuotaExceededError extends Error {
  constructor(
    readonly usedBytes: number,
    readonly limitBytes: number,
  ) {
    super('storage quota exceeded');
  }
}

/**
 * First key of the per-tenant advisory lock that serialises storage-quota decisions; the second
 * is a hash of the tenant id. Any constant works as long as no other feature uses it.
 */
const STORAGE_LOCK_NAMESPACE = 0x696d6773; // "imgs"

/** The only code touching `images`. Every query is scoped to its tenant. */
@Injectable()
export class ImagesRepository {
  constructor(@InjectRepository(ImageEntity) private readonly repo: Repository<ImageEntity>) {}

  /** Bytes the tenant stores: the sum over its images (the truth the usage report reads too). */
  async storedBytes(tenantId: string): Promise<number> {
    return this.sumFor(this.repo.manager, tenantId);
  }

  /**
   * Inserts the row if the tenant's stored bytes plus this image fit `limitBytes`, then runs
   * `beforeCommit` (moving the file into place) inside the same transaction: a failing step rolls
   * the row back. The check and the insert hold a per-tenant advisory lock, so concurrent uploads
   * of one tenant, on any gateway instance, are decided one after the other and cannot overshoot.
   */
  async insertWithinQuota(image: NewImage, limitBytes: number, beforeCommit: () => Promise<void>): Promise<StoredImage> {
    return this.repo.manager.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [STORAGE_LOCK_NAMESPACE, image.tenantId]);
      const used = await this.sumFor(manager, image.tenantId);
      if (used + image.sizeBytes > limitBytes) throw new StorageQuotaExceededError(used, limitBytes);
      const rows: ImageRow[] = await manager.query(
        `INSERT INTO images (id, tenant_id, file_name, content_type, size_bytes, sha256, width, height, original_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING ${COLUMNS}`,
        [
          image.id,
          image.tenantId,
          image.fileName,
          image.contentType,
          image.sizeBytes,
          image.sha256,
          image.width,
          image.height,
          image.originalName,
        ],
      );
      await beforeCommit();
      return toStoredImage(rows[0]);
    });
  }

  async findPage(tenantId: string, limit: number, offset: number): Promise<{ items: StoredImage[]; total: number }> {
    const [rows, count] = await Promise.all([
      this.repo.query(
        `SELECT ${COLUMNS} FROM images WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
        [tenantId, limit, offset],
      ) as Promise<ImageRow[]>,
      this.repo.query('SELECT count(*)::int AS total FROM images WHERE tenant_id = $1', [tenantId]) as Promise<Array<{ total: number }>>,
    ]);
    return { items: rows.map(toStoredImage), total: count[0].total };
  }

  async getById(tenantId: string, id: string): Promise<StoredImage | undefined> {
    const rows: ImageRow[] = await this.repo.query(`SELECT ${COLUMNS} FROM images WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0] ? toStoredImage(rows[0]) : undefined;
  }

  /**
   * Deletes the tenant's image row and runs `beforeCommit` with it (moving the file aside) in one
   * transaction; undefined when the tenant has no such image. The storage lock is held too, so a
   * delete and a quota decision of the same tenant never interleave.
   */
  async deleteById(tenantId: string, id: string, beforeCommit: (image: StoredImage) => Promise<void>): Promise<StoredImage | undefined> {
    return this.repo.manager.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [STORAGE_LOCK_NAMESPACE, tenantId]);
      const result: [ImageRow[], number] | ImageRow[] = await manager.query(
        `DELETE FROM images WHERE tenant_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
        [tenantId, id],
      );
      // TypeORM's postgres driver answers DELETE ... RETURNING as [rows, affected].
      const rows = (Array.isArray(result[0]) ? result[0] : result) as ImageRow[];
      if (rows.length === 0) return undefined;
      const image = toStoredImage(rows[0]);
      await beforeCommit(image);
      return image;
    });
  }

  private async sumFor(manager: EntityManager, tenantId: string): Promise<number> {
    const rows: Array<{ used: string }> = await manager.query(
      'SELECT COALESCE(sum(size_bytes), 0)::text AS used FROM images WHERE tenant_id = $1',
      [tenantId],
    );
    return Number(rows[0].used);
  }
}

const COLUMNS = 'id, tenant_id, file_name, content_type, size_bytes::text AS size_bytes, sha256, width, height, original_name, created_at';

interface ImageRow {
  id: string;
  tenant_id: string;
  file_name: string;
  content_type: string;
  size_bytes: string;
  sha256: string;
  width: number | null;
  height: number | null;
  original_name: string | null;
  created_at: Date;
}

function toStoredImage(row: ImageRow): StoredImage {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    fileName: row.file_name,
    contentType: row.content_type,
    sizeBytes: Number(row.size_bytes),
    sha256: row.sha256,
    width: row.width,
    height: row.height,
    originalName: row.original_name,
    createdAt: row.created_at,
  };
}
