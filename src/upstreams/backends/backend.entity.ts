import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A row of `backends` (migration 001): one imgproxy server (or a server of a configured upstream). */
@Entity({ name: 'backends' })
export class BackendEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'text', unique: true })
  name: string;

  @Column({ type: 'text' })
  url: string;

  @Column({ type: 'integer' })
  weight: number;

  @Column({ type: 'boolean' })
  enabled: boolean;

  @Column({ type: 'text' })
  pool: string;

  @Column({ name: 'is_healthy', type: 'boolean' })
  isHealthy: boolean;

  @Column({ name: 'last_health_check', type: 'timestamptz', nullable: true })
  lastHealthCheck: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
