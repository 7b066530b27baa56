import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn, ValueTransformer } from 'typeorm';
import type { ImagePolicy } from '../signing/image-policy';

/** pg returns bigint as text; every figure here fits a double exactly (< 2^53). */
export const bigintNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

@Entity({ name: 'plans' })
export class PlanEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'text', unique: true })
  name: string;

  @Column({ type: 'text', nullable: true })
  description: string | null;

  @Column({ name: 'rate_per_minute', type: 'integer' })
  perMinute: number;

  @Column({ name: 'rate_per_hour', type: 'integer' })
  perHour: number;

  @Column({ type: 'integer', nullable: true })
  burst: number | null;

  @Column({ name: 'monthly_requests', type: 'bigint', transformer: bigintNumber })
  monthlyRequests: number;

  @Column({ name: 'daily_requests', type: 'bigint', nullable: true, transformer: bigintNumber })
  dailyRequests: number | null;

  @Column({ name: 'monthly_bandwidth_bytes', type: 'bigint', transformer: bigintNumber })
  monthlyBandwidthBytes: number;

  @Column({ name: 'storage_bytes', type: 'bigint', transformer: bigintNumber })
  storageBytes: number;

  /** Image policy of every tenant on the plan, unless the tenant sets a field itself. */
  @Column({ name: 'image_policy', type: 'jsonb', default: () => `'{}'::jsonb` })
  imagePolicy: ImagePolicy;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
