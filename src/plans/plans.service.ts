import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import type { FastifyRequest } from 'fastify';
import { EntityManager } from 'typeorm';
import { AuthInvalidationService } from '../change-bus/auth-invalidation.service';
import { GatewayException } from '../common/errors/gateway.exception';
import { GatewayConfig } from '../config/gateway-config';
import { AuditService } from '../audit/audit.service';
import { applyImagePolicyPatch, cleanImagePolicy, imagePolicyProblems, type ImagePolicy, type ImagePolicyPatch } from '../signing/image-policy';
import { ImgproxyOptionRules } from '../signing/imgproxy-options';
import { ImagePolicyDto } from './image-policy.dto';
import { PlanEntity } from './plan.entity';
import { PlanCreateDto, PlanResponseDto, PlanUpdateDto } from './plan.dto';
import { PlanFields, PlansRepository } from './plans.repository';

@Injectable()
export class PlansService implements OnModuleInit {
  private readonly logger = new Logger(PlansService.name);
  private readonly policyRules: ImgproxyOptionRules;

  constructor(
    private readonly plans: PlansRepository,
    private readonly audit: AuditService,
    private readonly invalidation: AuthInvalidationService,
    private readonly config: GatewayConfig,
  ) {
    this.policyRules = new ImgproxyOptionRules(config.imgproxy);
  }

  /**
   * Config plans are upserted by name at every start: for those names the config is the
   * source of truth (an admin edit of them lasts until the next start). Plans created
   * through the admin API are left alone.
   */
  async onModuleInit(): Promise<void> {
    let changed = false;
    for (const seed of this.config.plans) {
      // A bad seed policy stops the start, naming the plan and the field.
      const imagePolicy = this.seedImagePolicy(seed.name, seed.imagePolicy);
      const written = await this.plans.upsertByName(planFields({ ...seed, imagePolicy }));
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

  /**
   * A plan's image policy checked beyond its JSON shape: presets with the configured backend's
   * option parser, formats, Pro features. 400 `validation_failed` with one detail per problem.
   */
  checkImagePolicy(policy: ImagePolicy, owner: 'plan' | 'tenant'): void {
    const problems = imagePolicyProblems(policy, { rules: this.policyRules, pro: this.config.imgproxy.pro, owner });
    if (problems.length > 0) {
      throw new GatewayException('validation_failed', 'The request is invalid.', { details: problems.map((problem) => `imagePolicy.${problem}`) });
    }
  }

  private seedImagePolicy(plan: string, raw: Record<string, unknown> | undefined): ImagePolicy {
    if (raw === undefined) return {};
    const dto = plainToInstance(ImagePolicyDto, raw);
    const shape = flatten(validateSync(dto, { whitelist: true, forbidNonWhitelisted: true }));
    const policy = cleanImagePolicy(dto);
    const problems = shape.length > 0 ? shape : imagePolicyProblems(policy, { rules: this.policyRules, pro: this.config.imgproxy.pro, owner: 'plan' });
    if (problems.length > 0) throw new Error(`plans[${plan}].imagePolicy is invalid: ${problems.join('; ')}`);
    return policy;
  }

  async create(request: FastifyRequest, dto: PlanCreateDto): Promise<PlanResponseDto> {
    const fields = planFields({ ...dto, imagePolicy: cleanImagePolicy(dto.imagePolicy ?? {}) });
    this.checkImagePolicy(fields.imagePolicy, 'plan');
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
      if (dto.imagePolicy !== undefined) {
        changes.imagePolicy = cleanImagePolicy(applyImagePolicyPatch(plan.imagePolicy, dto.imagePolicy as ImagePolicyPatch | null));
        this.checkImagePolicy(changes.imagePolicy, 'plan');
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
    imagePolicy: plan.imagePolicy,
    createdAt: plan.createdAt,
    updatedAt: plan.updatedAt,
  };
}

/** A plan as stored, from a config seed or an admin's create body (the same fields, optional ones as null). */
function planFields(
  source: Omit<PlanFields, 'description' | 'burst' | 'dailyRequests' | 'imagePolicy'> & { description?: string; burst?: number; dailyRequests?: number; imagePolicy?: ImagePolicy },
): PlanFields {
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
    imagePolicy: source.imagePolicy ?? {},
  };
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((error) => {
    const path = prefix ? `${prefix}.${error.property}` : error.property;
    return [...Object.values(error.constraints ?? {}).map((message) => `${path}: ${message}`), ...flatten(error.children ?? [], path)];
  });
}
