import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { EntityManager } from 'typeorm';
import { AuthInvalidationService } from '../auth/invalidation/auth-invalidation.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { GatewayConfig } from '../config/gateway-config';
import { AuditService } from '../audit/audit.service';
import { PlanEntity } from './plan.entity';
import { PlanCreateDto, PlanResponseDto, PlanUpdateDto } from './plan.dto';
import { PlanFields, PlansRepository } from './plans.repository';

@Injectable()
export class PlansService implements OnModuleInit {
  private readonly logger = new Logger(PlansService.name);

  constructor(
    private readonly plans: PlansRepository,
    private readonly audit: AuditService,
    private readonly invalidation: AuthInvalidationService,
    private readonly config: GatewayConfig,
  ) {}

  /**
   * Config plans are upserted by name at every start: for those names the config is the
   * source of truth (an admin edit of them lasts until the next start). Plans created
   * through the admin API are left alone.
   */
  async onModuleInit(): Promise<void> {
    let changed = false;
    for (const seed of this.config.plans) {
      const written = await this.plans.upsertByName(planFields(seed));
      changed ||= written;
    }
    // Instances already running (a rolling deploy) drop limits they cached from the old figures.
    if (changed) await this.invalidation.publish({ kind: 'all' });
    if (!(await this.plans.findByName(this.config.defaultPlan))) {
      this.logger.warn(`defaultPlan "${this.config.defaultPlan}" does not exist: tenants must be created with an explicit plan`);
    }
  }

  async list(): Promise<PlanResponseDto[]> {
    return (await this.plans.list()).map(toPlanResponse);
  }

  async get(id: string): Promise<PlanResponseDto> {
    return toPlanResponse(await this.require(id));
  }

  /** The plan a tenant create or update names; 400 when it does not exist. */
  async requireByName(name: string | undefined, manager?: EntityManager): Promise<PlanEntity> {
    const wanted = name ?? this.config.defaultPlan;
    const plan = await this.plans.findByName(wanted, manager);
    if (!plan) {
      throw new GatewayException('validation_failed', 'The request is invalid.', {
        details: [`plan: "${wanted}" is not a plan${name === undefined ? ' (the configured defaultPlan)' : ''}`],
      });
    }
    return plan;
  }

  async findById(id: string, manager?: EntityManager): Promise<PlanEntity | null> {
    return this.plans.findById(id, manager);
  }

  async create(request: FastifyRequest, dto: PlanCreateDto): Promise<PlanResponseDto> {
    const fields = planFields(dto);
    const created = await this.plans.transaction(async (manager) => {
      const plan = await this.plans.create(fields, manager);
      const response = toPlanResponse(plan);
      await this.audit.record(request, { action: 'plan.create', targetType: 'plan', targetId: plan.id, after: response }, manager);
      return response;
    });
    return created;
  }

  async update(request: FastifyRequest, id: string, dto: PlanUpdateDto): Promise<PlanResponseDto> {
    const updated = await this.plans.transaction(async (manager) => {
      const plan = await this.plans.findByIdForUpdate(id, manager);
      if (!plan) throw new GatewayException('not_found', 'No such plan.');
      const before = toPlanResponse(plan);
      const changes: Partial<PlanFields> = {};
      for (const field of ['description', 'perMinute', 'perHour', 'burst', 'monthlyRequests', 'dailyRequests', 'monthlyBandwidthBytes', 'storageBytes'] as const) {
        if (dto[field] !== undefined) (changes as Record<string, unknown>)[field] = dto[field];
      }
      const saved = await this.plans.update(plan, changes, manager);
      const after = toPlanResponse(saved);
      await this.audit.record(request, { action: 'plan.update', targetType: 'plan', targetId: id, before, after }, manager);
      return after;
    });
    await this.invalidation.publish({ kind: 'plan', id });
    return updated;
  }

  private async require(id: string): Promise<PlanEntity> {
    const plan = await this.plans.findById(id);
    if (!plan) throw new GatewayException('not_found', 'No such plan.');
    return plan;
  }
}

export function toPlanResponse(plan: PlanEntity): PlanResponseDto {
  return {
    id: plan.id,
    name: plan.name,
    description: plan.description,
    perMinute: plan.perMinute,
    perHour: plan.perHour,
    burst: plan.burst,
    monthlyRequests: plan.monthlyRequests,
    dailyRequests: plan.dailyRequests,
    monthlyBandwidthBytes: plan.monthlyBandwidthBytes,
    storageBytes: plan.storageBytes,
    createdAt: plan.createdAt,
    updatedAt: plan.updatedAt,
  };
}

/** A plan as stored, from a config seed or an admin's create body (the same fields, optional ones as null). */
function planFields(source: Omit<PlanFields, 'description' | 'burst' | 'dailyRequests'> & { description?: string; burst?: number; dailyRequests?: number }): PlanFields {
  return {
    name: source.name,
    description: source.description ?? null,
    perMinute: source.perMinute,
    perHour: source.perHour,
    burst: source.burst ?? null,
    monthlyRequests: source.monthlyRequests,
    dailyRequests: source.dailyRequests ?? null,
    monthlyBandwidthBytes: source.monthlyBandwidthBytes,
    storageBytes: source.storageBytes,
  };
}
