import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Agent, request } from 'undici';
import { GatewayConfig } from '../../config/gateway-config';
import { GatewayMetrics } from '../../metrics/gateway-metrics.service';
import type { BackendConfig } from '../backend-state/backend-pool';
import { BackendRegistry, type HealthCheckSettings } from './backend-registry.service';
import { BackendRepository } from './backend.repository';
import { joinUrl } from './backend-url';

const CHECK_INTERVAL = 'backend-health-checks';
/** A health answer is a few bytes; anything longer is read no further. */
const MAX_HEALTH_BODY = 64 * 1024;
/** How often the prober looks for backends whose check is due (intervals are whole seconds). */
const TICK_MS = 1_000;
/** A check due within this much of the tick still runs on it, so 1 s intervals do not slip to 2 s. */
const DUE_SLACK_MS = 100;

/**
 * Active health checks (docs/proxy-and-backends.md): `GET <path>` on each enabled backend at its
 * upstream's interval (`healthCheck` for the imgproxy pools, an upstream's own `healthCheck` for a
 * configured one, none when it has none); 2xx within the timeout passes. Thresholds live in the
 * pool's HealthTracker; on a transition this logs, sets the metric and, for table backends,
 * persists `is_healthy`. A backend new to this instance is checked at once.
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
  /** When each backend's last check started (epoch ms). */
  private readonly lastStarted = new Map<string, number>();
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(
    private readonly registry: BackendRegistry,
    private readonly repository: BackendRepository,
    private readonly scheduler: SchedulerRegistry,
    config: GatewayConfig,
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
    const timer = setInterval(() => void this.checkRound(this.due()), TICK_MS);
    timer.unref();
    this.scheduler.addInterval(CHECK_INTERVAL, timer);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.scheduler.doesExist('interval', CHECK_INTERVAL)) this.scheduler.deleteInterval(CHECK_INTERVAL);
    await this.agent.destroy();
  }

  /** Backends whose interval has passed since their last check. */
  private due(): BackendConfig[] {
    const now = Date.now();
    return this.registry.backends().filter((backend) => {
      const settings = this.registry.healthCheckOf(backend);
      return settings !== undefined && now - (this.lastStarted.get(backend.id) ?? 0) >= settings.intervalMs - DUE_SLACK_MS;
    });
  }

  /** One check of each enabled backend not already being checked, then one bookkeeping UPDATE. */
  async checkRound(backends: readonly BackendConfig[]): Promise<void> {
    const due = backends.filter((b) => b.enabled && !this.running.has(b.id) && this.registry.healthCheckOf(b) !== undefined);
    if (due.length === 0 || this.stopped) return;
    const checked: string[] = [];
    await Promise.all(
      due.map(async (backend) => {
        const settings = this.registry.healthCheckOf(backend)!;
        this.running.add(backend.id);
        this.lastStarted.set(backend.id, Date.now());
        try {
          const result = await this.check(backend, settings);
          if (this.stopped) return;
          const transition = this.registry.reportHealthCheck(backend, result.ok, result.error);
          if (transition) await this.onTransition(backend, transition, settings, result.error);
          else if (settings.persist) checked.push(backend.id);
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

  private async check(backend: BackendConfig, settings: HealthCheckSettings): Promise<{ ok: boolean; error?: string }> {
    const timeoutMs = settings.timeoutMs;
    try {
      const response = await request(joinUrl(backend.url, settings.path), {
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

  private async onTransition(backend: BackendConfig, transition: 'up' | 'down', settings: HealthCheckSettings, error?: string): Promise<void> {
    const healthy = transition === 'up';
    if (healthy) this.logger.log({ backend: backend.name, pool: backend.pool }, `backend ${backend.name} is healthy again`);
    else this.logger.warn({ backend: backend.name, pool: backend.pool, reason: error }, `backend ${backend.name} is unhealthy (${error})`);
    this.metrics?.backendState(backend.name, backend.pool, healthy, backend.enabled ? backend.weight : 0);
    if (!settings.persist) return;
    await this.repository
      .recordHealth(backend.id, healthy, new Date())
      .catch((e: Error) => this.logger.warn(`could not persist the health of ${backend.name}: ${e.message}`));
  }
}
