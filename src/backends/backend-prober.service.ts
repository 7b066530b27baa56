import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Agent, request } from 'undici';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import type { BackendConfig } from '../proxy/backend-state/backend-pool';
import { BackendRegistry } from './backend-registry.service';
import { BackendRepository } from './backend.repository';
import { joinUrl } from './backend-url';

const CHECK_INTERVAL = 'backend-health-checks';
/** A health answer is a few bytes; anything longer is read no further. */
const MAX_HEALTH_BODY = 64 * 1024;

/**
 * Active health checks (docs/proxy-and-backends.md): every `healthCheck.intervalSeconds`, `GET <path>` on each
 * enabled backend; 2xx within `timeoutSeconds` passes. Thresholds live in the pool's
 * HealthTracker; on a transition this logs, sets the metric and persists `is_healthy`. A backend
 * new to this instance is checked at once, so it does not wait a whole interval.
 *
 * Checks use their own connection agent, so a backend whose request pool is saturated by image
 * traffic is still judged by whether it answers, not by our queue.
 */
@Injectable()
export class BackendProber implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BackendHealth');
  private readonly agent: Agent;
  private readonly running = new Set<string>();
  private readonly seen = new Set<string>();
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(
    private readonly registry: BackendRegistry,
    private readonly repository: BackendRepository,
    private readonly scheduler: SchedulerRegistry,
    private readonly config: GatewayConfig,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {
    const timeout = config.healthCheck.timeoutSeconds * 1000;
    this.agent = new Agent({ connect: { timeout }, connections: 2, keepAliveTimeout: 4_000 });
  }

  onApplicationBootstrap(): void {
    this.unsubscribe = this.registry.onChange((backends) => {
      const fresh = backends.filter((b) => !this.seen.has(b.id));
      for (const b of backends) this.seen.add(b.id);
      if (fresh.length > 0) void this.checkRound(fresh);
    });
    // Backends loaded before this hook ran (BackendsService boots first) are checked now.
    const loaded = this.registry.backends();
    for (const b of loaded) this.seen.add(b.id);
    if (loaded.length > 0) void this.checkRound(loaded);
    const timer = setInterval(() => void this.checkRound(this.registry.backends()), this.config.healthCheck.intervalSeconds * 1000);
    timer.unref();
    this.scheduler.addInterval(CHECK_INTERVAL, timer);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.scheduler.doesExist('interval', CHECK_INTERVAL)) this.scheduler.deleteInterval(CHECK_INTERVAL);
    await this.agent.destroy();
  }

  /** One check of each enabled backend not already being checked, then one bookkeeping UPDATE. */
  async checkRound(backends: readonly BackendConfig[]): Promise<void> {
    const due = backends.filter((b) => b.enabled && !this.running.has(b.id));
    if (due.length === 0 || this.stopped) return;
    const checked: string[] = [];
    await Promise.all(
      due.map(async (backend) => {
        this.running.add(backend.id);
        try {
          const result = await this.check(backend);
          if (this.stopped) return;
          const transition = this.registry.reportHealthCheck(backend, result.ok, result.error);
          if (transition) await this.onTransition(backend, transition, result.error);
          else checked.push(backend.id);
        } finally {
          this.running.delete(backend.id);
        }
      }),
    );
    if (!this.stopped) {
      await this.repository.recordChecked(checked, new Date()).catch((error: Error) => this.logger.warn(`could not record health checks: ${error.message}`));
      for (const b of this.registry.snapshot()) this.metrics?.circuitState(b.name, b.circuit);
    }
  }

  private async check(backend: BackendConfig): Promise<{ ok: boolean; error?: string }> {
    const timeoutMs = this.config.healthCheck.timeoutSeconds * 1000;
    try {
      const response = await request(joinUrl(backend.url, this.config.healthCheck.path), {
        dispatcher: this.agent,
        method: 'GET',
        headers: { 'user-agent': 'imgproxy-gateway-health' },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body.dump({ limit: MAX_HEALTH_BODY });
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      return ok ? { ok } : { ok, error: `HTTP ${response.statusCode}` };
    } catch (error) {
      const { code, name, message } = error as Error & { code?: string };
      return { ok: false, error: code ?? (name === 'TimeoutError' ? 'timeout' : message) };
    }
  }

  private async onTransition(backend: BackendConfig, transition: 'up' | 'down', error?: string): Promise<void> {
    const healthy = transition === 'up';
    if (healthy) this.logger.log({ backend: backend.name, pool: backend.pool }, `backend ${backend.name} is healthy again`);
    else this.logger.warn({ backend: backend.name, pool: backend.pool, reason: error }, `backend ${backend.name} is unhealthy (${error})`);
    this.metrics?.backendState(backend.name, backend.pool, healthy, backend.enabled ? backend.weight : 0);
    await this.repository
      .recordHealth(backend.id, healthy, new Date())
      .catch((e: Error) => this.logger.warn(`could not persist the health of ${backend.name}: ${e.message}`));
  }
}
