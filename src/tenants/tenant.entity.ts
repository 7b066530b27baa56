import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { PlanEntity } from '../plans/plan.entity';
import type { ImagePolicy } from '../signing/image-policy';
import type { QuotaOverrides, RateLimitOverrides } from './effective-limits';

export type TenantStatus = 'active' | 'suspended';

@Entity({ name: 'tenants' })
export class TenantEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'text' })
  name: string;

  @Column({ type: 'text' })
  email: string;

  @Column({ name: 'plan_id', type: 'uuid' })
  planId: string;

  @ManyToOne(() => PlanEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'plan_id' })
  plan?: PlanEntity;

  @Column({ type: 'text', default: 'active' })
  status: TenantStatus;

  @Column({ name: 'rate_limits', type: 'jsonb', default: () => `'{}'::jsonb` })
  rateLimits: RateLimitOverrides;

  @Column({ type: 'jsonb', default: () => `'{}'::jsonb` })
  quotas: QuotaOverrides;

  @Column({ name: 'allowed_sources', type: 'text', array: true, default: () => `'{}'` })
  allowedSources: string[];

  @Column({ name: 'allow_unsigned_urls', type: 'boolean', default: false })
  allowUnsignedUrls: boolean;

  /** The tenant's own image policy fields; each replaces the plan's (docs/imgproxy.md). */
  @Column({ name: 'image_policy', type: 'jsonb', default: () => `'{}'::jsonb` })
  imagePolicy: ImagePolicy;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
