import cluster, { type ClusterSettings, type Worker } from 'node:cluster';
import type { LoggerService } from '@nestjs/common';
import { ClusterMetrics } from '../metrics/cluster-metrics';
import { RestartBackoff, WORKER_INDEX_ENV } from './cluster-plan';

export interface ClusterPrimaryOptions {
  workers: number;
  /** A worker's own drain deadline (server.shutdownTimeoutMs); the primary waits that long plus a margin. */
  shutdownTimeoutMs: number;
  logger: Pick<LoggerService, 'log' | 'warn' | 'error'>;
  /** Environment added for every worker (what the primary decided at run time). */
  env?: Record<string, string>;
  /** Script and arguments the workers run; this process's own entry by default. */
  exec?: string;
  args?: string[];
  execArgv?: string[];
  /** A new policy per worker slot. */
  backoff?: () => RestartBackoff;
  /** Handed every message of a worker that is not the cluster's own (the benchmark's counters). */
  onWorkerMessage?: (worker: Worker, message: unknown) => void;
}

interface Slot {
  index: number;
  worker?: Worker;
  startedAt: number;
  listening: boolean;
  backoff: RestartBackoff;
  timer?: NodeJS.Timeout;
}

/** How long past the workers' own drain deadline the primary waits before it kills what is left. */
const SHUTDOWN_MARGIN_MS = 5_000;

/**
 * The primary of `WORKERS=N` (node:cluster): forks N workers that each run the whole gateway on
 * the one port (the primary accepts connections and hands them out round-robin), restarts a worker
 * that exits unexpectedly after a backoff, merges /metrics for them (cluster-metrics.ts), passes
 * SIGHUP on (route reload), and on SIGTERM/SIGINT has every worker drain and waits for them.
 */
export class ClusterPrimary {
  readonly metrics = new ClusterMetrics();
  private readonly slots: Slot[] = [];
  private stopping?: Promise<number>;
  private started = false;
  private failStart?: (error: Error) => void;

  constructor(private readonly options: ClusterPrimaryOptions) {
    if (!cluster.isPrimary) throw new Error('ClusterPrimary runs in the primary process only');
    // Only what is given: an undefined field would replace Node's default (process.argv, execArgv).
    const settings: ClusterSettings = {};
    if (options.exec) settings.exec = options.exec;
    if (options.args) settings.args = options.args;
    if (options.execArgv) settings.execArgv = options.execArgv;
    cluster.setupPrimary(settings);
    for (let index = 0; index < options.workers; index++) {
      this.slots.push({ index, startedAt: 0, listening: false, backoff: options.backoff?.() ?? new RestartBackoff() });
    }
    cluster.on('message', (worker, message) => {
      if (!this.metrics.onMessage(worker, message, () => this.listeningWorkers())) options.onWorkerMessage?.(worker, message);
    });
  }

  /**
   * Forks every worker and resolves once all of them listen. A worker that exits before it
   * listened fails the start (it has logged why; a dependency is down or the port is taken), and
   * the other workers are stopped: a start that cannot serve should fail visibly, not loop.
   */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.failStart = reject;
      const waitAll = () => {
        if (this.slots.every((slot) => slot.listening)) {
          this.started = true;
          this.failStart = undefined;
          resolve();
        }
      };
      for (const slot of this.slots) this.fork(slot, waitAll);
    });
  }

  /** The workers serving now. */
  listeningWorkers(): Worker[] {
    return this.slots.filter((slot) => slot.listening && slot.worker).map((slot) => slot.worker!);
  }

  /** Worker pids by slot (undefined while a slot waits for its restart). */
  pids(): (number | undefined)[] {
    return this.slots.map((slot) => slot.worker?.process.pid);
  }

  /**
   * SIGTERM/SIGINT: every worker drains (its own graceful shutdown), then `afterStop` and exit 0,
   * or 1 if a worker did not exit cleanly. SIGHUP reloads routes in every worker.
   */
  installSignals(afterStop: () => Promise<unknown>): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        void this.stop(signal).then(async (code) => {
          await afterStop().catch((error: Error) => this.options.logger.error(`stopping helpers failed: ${error.message}`));
          process.exit(code);
        });
      });
    }
    process.on('SIGHUP', () => {
      for (const worker of this.listeningWorkers()) worker.process.kill('SIGHUP');
    });
  }

  /** Has every worker drain and exit; resolves with 0 when all exited with 0, else 1. */
  stop(signal: string): Promise<number> {
    this.stopping ??= this.stopAll(signal);
    return this.stopping;
  }

  private async stopAll(signal: string): Promise<number> {
    this.options.logger.log(`${signal} received: stopping ${this.slots.length} workers`);
    for (const slot of this.slots) clearTimeout(slot.timer);
    const running = this.slots.map((slot) => slot.worker).filter((worker): worker is Worker => worker !== undefined && !isDead(worker));
    const exits = running.map(
      (worker) =>
        new Promise<boolean>((resolve) => {
          worker.once('exit', (code, exitSignal) => resolve(code === 0 && !exitSignal));
          worker.process.kill('SIGTERM');
        }),
    );
    const deadline = setTimeout(() => {
      this.options.logger.warn(`workers still running ${this.options.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS} ms after ${signal}: killing them`);
      for (const worker of running) if (!isDead(worker)) worker.process.kill('SIGKILL');
    }, this.options.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS);
    const clean = await Promise.all(exits);
    clearTimeout(deadline);
    const allClean = clean.every(Boolean);
    if (allClean) this.options.logger.log('every worker stopped cleanly');
    else this.options.logger.error('a worker did not stop cleanly');
    return allClean ? 0 : 1;
  }

  private fork(slot: Slot, onListening: () => void): void {
    const worker = cluster.fork({ ...this.options.env, [WORKER_INDEX_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.listening = false;
    worker.once('listening', () => {
      slot.listening = true;
      this.metrics.workersListening(this.listeningWorkers().length);
      onListening();
    });
    worker.once('exit', (code, signal) => {
      slot.listening = false;
      slot.worker = undefined;
      this.metrics.workersListening(this.listeningWorkers().length);
      if (this.stopping) return;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (!this.started) {
        this.options.logger.error(`worker ${slot.index} (pid ${worker.process.pid}) exited with ${how} before it listened: stopping`);
        const fail = this.failStart;
        this.failStart = undefined;
        void this.stop('start failure').then(() => fail?.(new Error(`worker ${slot.index} exited with ${how} before it listened`)));
        return;
      }
      const delay = slot.backoff.next(Date.now() - slot.startedAt);
      this.options.logger.error(`worker ${slot.index} (pid ${worker.process.pid}) exited with ${how}: starting it again in ${delay} ms`);
      slot.timer = setTimeout(() => {
        if (this.stopping) return;
        this.metrics.workerRestarted();
        this.fork(slot, () => this.options.logger.log(`worker ${slot.index} listening again (pid ${slot.worker?.process.pid})`));
      }, delay);
    });
  }
}

function isDead(worker: Worker): boolean {
  return worker.isDead();
}
