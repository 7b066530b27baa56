import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../../audit/audit.service';
import { GatewayException } from '../../common/errors/gateway.exception';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import type { BackendConfig, BackendSnapshot } from '../backend-state/backend-pool';
import { RedisService } from '../../redis/redis.service';
import { BackendCreateDto, BackendResponseDto, BackendUpdateDto } from './backend.dto';
import { BackendEntity } from './backend.entity';
import { BackendRegistry, DEFAULT_POOL } from './backend-registry.service';
import { BackendFields, BackendRepository, DuplicateBackendNameError } from './backend.repository';

/** Pub/sub channel: "the backends table changed, reload it" (docs/proxy-and-backends.md: every instance within 2 s). */
export const BACKENDS_CHANGED_CHANNEL = 'backends-changed';
const RELOAD_INTERVAL = 'backends-reload';

/**
 * Backends at run time: seeded from configuration at start, edited through the admin API,
 * kept in memory by BackendRegistry. PostgreSQL is the source of truth; a change is committed
 * (with its audit row), then announced on Redis so every instance reloads the table, with a slow
 * periodic reload as the backstop for a lost message or a Redis outage.
 */
@Injectable()
export class BackendsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(BackendsService.name);
  private reloading?: Promise<void>;
  private reloadAgain = false;
  private exported = new Map<string, string>();

  constructor(
    private readonly repository: BackendRepository,
    private readonly registry: BackendRegistry,
    private readonly audit: AuditService,
    private readonly redis: RedisService,
    private readonly scheduler: SchedulerRegistry,
    private readonly config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const seeds = this.config.backends.map((b) => ({ name: b.name, url: b.url, weight: b.weight, enabled: b.enabled, pool: b.pool }));
    const changed = await this.repository.upsertByName(seeds);
    await this.reload();
    if (changed > 0) {
      this.logger.log(`configuration seeded ${changed} backend(s)`);
      await this.announce();
    }
    // Not awaited: with Redis down the subscription completes when it comes back (ioredis
    // re-subscribes), and the start must not wait for it; the periodic reload covers the gap.
    this.redis
      .subscribe(BACKENDS_CHANGED_CHANNEL, () => void this.reload())
      .catch((error: Error) => this.logger.warn(`backends-changed subscription: ${error.message}`));
    this.redis.onResubscribed(() => void this.reload());
    const timer = setInterval(() => void this.reload(), this.config.proxy.backendsReloadSeconds * 1000);
    timer.unref();
    this.scheduler.addInterval(RELOAD_INTERVAL, timer);
  }

  onApplicationShutdown(): void {
    if (this.scheduler.doesExist('interval', RELOAD_INTERVAL)) this.scheduler.deleteInterval(RELOAD_INTERVAL);
  }

  async list(): Promise<BackendResponseDto[]> {
    const live = this.liveState();
    return (await this.repository.listAll()).map((row) => toResponse(row, live.get(row.id)));
  }

  async get(id: string): Promise<BackendResponseDto> {
    const row = await this.repository.findById(id);
    if (!row) throw notFound();
    return toResponse(row, this.liveState().get(row.id));
  }

  async create(request: FastifyRequest, dto: BackendCreateDto): Promise<BackendResponseDto> {
    const fields: BackendFields = { name: dto.name, url: dto.url, weight: dto.weight, enabled: dto.enabled ?? true, pool: dto.pool ?? DEFAULT_POOL };
    const row = await this.write(() =>
      this.repository.inTransaction(async (manager) => {
        const created = await this.repository.create(fields, manager);
        await this.audit.record(request, { action: 'backend.create', targetType: 'backend', targetId: created.id, after: plain(created) }, manager);
        return created;
      }),
    );
    await this.applyChange();
    return toResponse(row, this.liveState().get(row.id));
  }

  async update(request: FastifyRequest, id: string, dto: BackendUpdateDto): Promise<BackendResponseDto> {
    const row = await this.write(() =>
      this.repository.inTransaction(async (manager) => {
        const current = await this.repository.findByIdForUpdate(id, manager);
        if (!current) throw notFound();
        const before = plain(current);
        const changes: Partial<BackendFields> = {};
        for (const key of ['name', 'url', 'weight', 'enabled', 'pool'] as const) {
          if (dto[key] !== undefined) (changes as Record<string, unknown>)[key] = dto[key];
        }
        const updated = await this.repository.update(current, changes, manager);
        await this.audit.record(request, { action: 'backend.update', targetType: 'backend', targetId: id, before, after: plain(updated) }, manager);
        return updated;
      }),
    );
    await this.applyChange();
    return toResponse(row, this.liveState().get(row.id));
  }

  async remove(request: FastifyRequest, id: string): Promise<void> {
    await this.repository.inTransaction(async (manager) => {
      const current = await this.repository.findByIdForUpdate(id, manager);
      if (!current) throw notFound();
      await this.repository.delete(id, manager);
      await this.audit.record(request, { action: 'backend.delete', targetType: 'backend', targetId: id, before: plain(current) }, manager);
    });
    await this.applyChange();
  }

  /**
   * Loads the table into the registry. Calls that arrive while a load runs are folded into one
   * more load after it, so a burst of changes costs at most two queries and the last one wins.
   */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        await this.loadFromDatabase();
      } while (this.reloadAgain);
    })().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async loadFromDatabase(): Promise<void> {
    let rows: BackendEntity[];
    try {
      rows = await this.repository.listAll();
    } catch (error) {
      // Keep serving with what we have: the backends are in memory, the next reload catches up.
      this.logger.warn(`backends reload failed, keeping the current set: ${(error as Error).message}`);
      return;
    }
    // A verdict persisted recently by any instance is the best knowledge about a backend this
    // instance has not seen yet; an old one (say, from before a full restart) is not trusted.
    const freshFor = 3 * this.config.healthCheck.intervalSeconds * 1000;
    const now = Date.now();
    const backends: BackendConfig[] = rows.map((row) => ({
      id: row.id,
      name: row.name,
      url: row.url,
      weight: row.weight,
      enabled: row.enabled,
      pool: row.pool,
      healthy: row.lastHealthCheck && now - row.lastHealthCheck.getTime() < freshFor ? row.isHealthy : undefined,
    }));
    this.registry.replaceAll(backends);
    this.exportMetrics();
  }

  /** Weight and health gauges follow the configuration; deleted backends stop being exported. */
  private exportMetrics(): void {
    if (!this.metrics) return;
    const next = new Map<string, string>();
    for (const b of this.registry.snapshot()) {
      next.set(b.name, b.pool);
      this.metrics.backendState(b.name, b.pool, b.healthy, b.enabled ? b.weight : 0);
      this.metrics.circuitState(b.name, b.circuit);
    }
    for (const [name, pool] of this.exported) {
      if (next.get(name) !== pool) this.metrics.backendRemoved(name, pool);
    }
    this.exported = next;
  }

  /** This instance at once (the admin sees the effect in the answer), the others over Redis. */
  private async applyChange(): Promise<void> {
    await this.reload();
    await this.announce();
  }

  private async announce(): Promise<void> {
    try {
      await this.redis.publish(BACKENDS_CHANGED_CHANNEL, String(Date.now()));
    } catch (error) {
      // The change is committed; other instances pick it up with their periodic reload.
      this.logger.warn(`could not announce a backends change: ${(error as Error).message}`);
    }
  }

  private async write<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof DuplicateBackendNameError) {
        throw new GatewayException('conflict', `A backend named "${error.backendName}" already exists.`);
      }
      throw error;
    }
  }

  private liveState(): Map<string, BackendSnapshot> {
    return new Map(this.registry.snapshot().map((s) => [s.id, s]));
  }
}

function notFound(): GatewayException {
  return new GatewayException('not_found', 'No backend with this id.');
}

function plain(row: BackendEntity): Record<string, unknown> {
  return { id: row.id, name: row.name, url: row.url, weight: row.weight, enabled: row.enabled, pool: row.pool };
}

function toResponse(row: BackendEntity, live?: BackendSnapshot): BackendResponseDto {
  const dto: BackendResponseDto = {
    id: row.id,
    name: row.name,
    url: row.url,
    weight: row.weight,
    enabled: row.enabled,
    pool: row.pool,
    isHealthy: row.isHealthy,
    lastHealthCheck: row.lastHealthCheck?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
  if (live) {
    dto.state = {
      healthy: live.healthy,
      available: live.available,
      circuit: live.circuit,
      backPressure: live.backPressure,
      inFlight: live.inFlight,
      lastCheckAt: live.lastCheckAt !== undefined ? new Date(live.lastCheckAt).toISOString() : null,
      lastError: live.lastError ?? null,
    };
  }
  return dto;
}
