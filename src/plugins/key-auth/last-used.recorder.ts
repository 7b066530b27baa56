import { BeforeApplicationShutdown, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { GatewayConfig } from '../../config/gateway-config';
import { ApiKeysRepository } from './api-keys.repository';

/**
 * `api_keys.last_used_at` without a write per request (docs/tenants-and-keys.md): key ids used since the last
 * flush are collected in memory and written with one UPDATE every `lastUsedFlushSeconds`,
 * and once more at shutdown. The timestamp is the flush time, so it is exact to the interval.
 */
@Injectable()
export class LastUsedRecorder implements OnModuleInit, BeforeApplicationShutdown, OnModuleDestroy {
  private readonly logger = new Logger(LastUsedRecorder.name);
  private pending = new Set<string>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

  constructor(
    private readonly repository: ApiKeysRepository,
    private readonly config: GatewayConfig,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), this.config.security.lastUsedFlushSeconds * 1000);
    this.timer.unref();
  }

  mark(keyId: string): void {
    this.pending.add(keyId);
  }

  /** Writes what was collected; on failure the ids are kept for the next attempt. */
  async flush(): Promise<void> {
    // One flush at a time, so a slow database never sees overlapping batches.
    if (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Set();
    this.flushing = this.repository
      .touchLastUsed([...batch])
      .catch((error: Error) => {
        for (const keyId of batch) this.pending.add(keyId);
        this.logger.warn(`last_used_at not written (${batch.size} keys, retried next flush): ${error.message}`);
      })
      .finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  /** Before the database pool closes (onApplicationShutdown), so the last batch is written. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }
}
