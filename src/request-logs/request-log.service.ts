import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { GatewayConfig } from '../config/gateway-config';
import { CACHE_LABELS } from '../logging/logging.options';
import { UrlRedactor } from '../logging/url-redaction';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { FinishedRequest, RequestLifecycleListener, RequestObserver } from '../gateway/request-observer';
import { BoundedQueue } from './bounded-queue';
import { LOGGED_ROUTES, RequestLogEntry, loggablePath } from './request-log.entry';
import { RequestLogPageDto, RequestLogQueryDto } from './request-log.dto';
import { RequestLogQuery, RequestLogRepository } from './request-log.repository';

/** Rows deleted per retention statement: short transactions, no long lock on the table. */
const RETENTION_BATCH = 5_000;
/** At most one "write failed" warning per this many milliseconds while PostgreSQL is down. */
const WARN_EVERY_MS = 30_000;

/**
 * docs/architecture.md request logs. A request only builds an entry in memory when it ends; a timer (or a
 * full batch) writes entries to PostgreSQL in multi-row inserts, off the request path. The
 * queue is bounded: when PostgreSQL cannot keep up the newest entries are dropped and counted,
 * never queued without limit, and traffic is never slowed or failed for the log's sake.
 *
 * Failure policy: a batch whose insert fails is lost (counted as dropped and as a postgres
 * store error, warned about at most every 30 s); retrying it would only grow the backlog.
 */
@Injectable()
export class RequestLogService implements OnModuleInit, BeforeApplicationShutdown, RequestLifecycleListener {
  private readonly logger = new Logger('RequestLogs');
  private readonly queue: BoundedQueue<RequestLogEntry>;
  private readonly batchSize: number;
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private flushSoon = false;
  private lastWarnAt = 0;
  private readonly redactor: UrlRedactor;

  constructor(
    private readonly config: GatewayConfig,
    private readonly repository: RequestLogRepository,
    private readonly metrics: GatewayMetrics,
    private readonly observer: RequestObserver,
  ) {
    this.queue = new BoundedQueue(config.requestLogs.queueSize);
    this.redactor = UrlRedactor.forConfig(config);
    this.batchSize = config.requestLogs.batchSize;
  }

  onModuleInit(): void {
    if (!this.config.requestLogs.enabled) return;
    this.observer.subscribe(this);
    this.timer = setInterval(() => void this.flush(), this.config.requestLogs.flushIntervalMs);
    this.timer.unref();
  }

  /** Runs before TypeORM closes its pool (that happens in onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Called by the RequestObserver once a response ended; only tenant-facing routes count. */
  requestFinished({ request, state, status, durationSeconds }: FinishedRequest): void {
    if (!state.route || !LOGGED_ROUTES.has(state.route)) return;
    this.enqueue({
      createdAt: new Date(),
      requestId: state.requestId,
      tenantId: state.auth?.tenantId ?? null,
      keyId: state.auth?.keyId ?? null,
      backend: state.backend ?? null,
      method: request.method,
      route: state.route,
      path: loggablePath(request.url, this.redactor),
      status,
      durationMs: Math.round(durationSeconds * 1000),
      bytesIn: state.bytesIn ?? 0,
      bytesOut: state.bytesOut ?? 0,
      clientIp: state.clientIp || null,
      cache: state.cacheStatus === undefined ? null : CACHE_LABELS[state.cacheStatus],
    });
  }

  /** Queues an entry; false when the queue was full and the entry was dropped. */
  enqueue(entry: RequestLogEntry): boolean {
    if (!this.queue.push(entry)) {
      this.metrics.requestLogDropped();
      return false;
    }
    // Under load, write a full batch at once instead of letting the queue fill up until the tick.
    if (this.queue.length >= this.batchSize && !this.flushSoon && this.timer) {
      this.flushSoon = true;
      setImmediate(() => {
        this.flushSoon = false;
        void this.flush();
      });
    }
    return true;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Writes everything queued, batch by batch. Concurrent callers share the running flush. */
  flush(): Promise<void> {
    if (!this.flushing) {
      this.flushing = this.drain().finally(() => (this.flushing = undefined));
    }
    return this.flushing;
  }

  /** Deletes rows older than `requestLogs.retentionDays`, in batches; returns how many. */
  @Cron(CronExpression.EVERY_HOUR, { name: 'request-logs-retention' })
  async purgeExpired(now: Date = new Date()): Promise<number> {
    const before = new Date(now.getTime() - this.config.requestLogs.retentionDays * 86_400_000);
    let total = 0;
    try {
      for (;;) {
        const deleted = await this.repository.deleteOlderThan(before, RETENTION_BATCH);
        total += deleted;
        if (deleted < RETENTION_BATCH) break;
      }
    } catch (error) {
      this.metrics.storeError('postgres');
      this.logger.warn(`request-log retention stopped after ${total} rows: ${(error as Error).message}`);
      return total;
    }
    if (total > 0) this.logger.log(`request-log retention deleted ${total} rows older than ${before.toISOString()}`);
    return total;
  }

  /** The admin query: `status` is an exact code (`404`) or a class (`5xx`). */
  async page(query: RequestLogQueryDto): Promise<RequestLogPageDto> {
    const { items, total } = await this.repository.find({ ...query, status: statusFilter(query.status) });
    return { items, total, limit: query.limit, offset: query.offset };
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.take(this.batchSize);
      try {
        await this.repository.insertBatch(batch);
      } catch (error) {
        this.metrics.storeError('postgres');
        this.metrics.requestLogDropped(batch.length);
        this.warnThrottled(`request-log write failed, ${batch.length} entries lost: ${(error as Error).message}`);
        return;
      }
    }
  }

  private warnThrottled(message: string): void {
    const now = Date.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.lastWarnAt = now;
    this.logger.warn(message);
  }
}

function statusFilter(status?: string): RequestLogQuery['status'] {
  if (status === undefined) return undefined;
  if (status.endsWith('xx')) {
    const base = Number(status[0]) * 100;
    return [base, base + 100];
  }
  return Number(status);
}
