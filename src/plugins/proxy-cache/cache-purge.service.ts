import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { GatewayException } from '../../common/errors/gateway.exception';
import { RedisService } from '../../redis/redis.service';
import { normalizeSourcePrefix } from './cache-source';
import type { DiskOpenOptions } from './disk-tier';
import { ProxyCache, type PurgeSelector, purgeMatch } from './proxy-cache';

export const CACHE_PURGE_CHANNEL = 'cache-purge';
/** Purges kept in the Redis log for instances that missed messages (a reconnect, a restart). */
const LOG_LENGTH = 10_000;
/** Purges that could not be sent (Redis down) wait here and are sent again. */
const RETRY_QUEUE_MAX = 10_000;
const RETRY_INTERVAL_MS = 5_000;

/** A purge on the wire: tenant, and prefix ('' for all). */
interface PurgeMessage {
  t: string;
  p: string;
}

/**
 * Purge on every instance (docs/cache.md). A purge is applied here at once, appended to a capped
 * Redis stream (the purge log) and published; every other instance applies it on receipt. The log
 * covers what pub/sub cannot: an instance whose subscription dropped replays what it missed when
 * it is back, and a disk tier replays what happened while its process was down before it serves
 * (its cursor, the id of the last purge applied, is kept beside its files). When the log no
 * longer reaches back that far, the instance drops what it holds instead.
 *
 * Without Redis (one instance) purges stay in process and remove disk files directly.
 */
@Injectable()
export class CachePurgeService implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('CachePurge');
  /** Marks this instance's own messages: applied when sent, skipped on receipt. */
  private readonly origin = randomUUID();
  private readonly logKey: string;
  /** Id of the newest purge log entry applied here. */
  private lastId: string | undefined;
  private readonly unsent: PurgeSelector[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private diskOpened: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: RedisService,
    private readonly cache: ProxyCache,
  ) {
    this.logKey = redis.key('cache', 'purges');
  }

  async onModuleInit(): Promise<void> {
    await this.redis.subscribe(CACHE_PURGE_CHANNEL, (message) => this.received(message));
    this.redis.onResubscribed(() => void this.catchUp());
    if (this.redis.enabled) this.lastId = await this.newestId().catch(() => undefined);
  }

  onApplicationBootstrap(): void {
    // In the background: start-up does not wait for the disk index.
    if (this.cache.disk) this.diskOpened = this.openDisk();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.diskOpened;
  }

  /** Resolves once the disk tier serves (or gave up); for tests and the benchmark. */
  whenDiskReady(): Promise<void> {
    return this.diskOpened;
  }

  /**
   * Drops the selected entries on every instance; resolves with how many this one dropped. When
   * the others cannot be told (Redis unavailable), the purge is kept here only and the call fails
   * with 503 `unavailable`, so the caller retries.
   */
  async purge(selector: PurgeSelector): Promise<number> {
    const normalized = normalize(selector);
    const dropped = this.cache.purgeLocal(normalized);
    try {
      await this.send(normalized);
    } catch (error) {
      this.logger.warn(`cache purge not sent to the other instances: ${(error as Error).message}`);
      throw new GatewayException('unavailable', 'The purge was applied on this instance but could not reach the others; retry.', { retryAfter: 5 }, { 'retry-after': 5 });
    }
    return dropped;
  }

  /** The same for purges nobody can retry (an upload deleted): sent again until Redis takes them. */
  async purgeEventually(selector: PurgeSelector): Promise<number> {
    const normalized = normalize(selector);
    const dropped = this.cache.purgeLocal(normalized);
    await this.send(normalized).catch((error: Error) => {
      this.logger.warn(`cache purge not sent yet (retried every ${RETRY_INTERVAL_MS / 1000} s): ${error.message}`);
      this.queueUnsent(normalized);
    });
    return dropped;
  }

  private async send(selector: PurgeSelector): Promise<void> {
    const body = JSON.stringify({ t: selector.tenantId, p: selector.prefix ?? '' } satisfies PurgeMessage);
    const client = this.redis.client;
    if (client === undefined) {
      await this.redis.publish(CACHE_PURGE_CHANNEL, `-|${this.origin}|${body}`);
      return;
    }
    const id = await client.xadd(this.logKey, 'MAXLEN', '~', String(LOG_LENGTH), '*', 'o', this.origin, 'm', body);
    if (id) this.advance(id);
    await this.redis.publish(CACHE_PURGE_CHANNEL, `${id}|${this.origin}|${body}`);
  }

  private received(message: string): void {
    const first = message.indexOf('|');
    const second = message.indexOf('|', first + 1);
    if (first <= 0 || second <= first) return;
    const id = message.slice(0, first);
    const origin = message.slice(first + 1, second);
    const purge = decode(message.slice(second + 1));
    if (origin !== this.origin && purge) this.cache.purgeLocal(purge);
    if (id !== '-') this.advance(id);
  }

  /** Back after a subscription outage: replay the purges published meanwhile. */
  private async catchUp(): Promise<void> {
    const client = this.redis.client;
    if (client === undefined) return;
    try {
      const since = this.lastId;
      const entries = since === undefined ? [] : await client.xrange(this.logKey, since, '+');
      if (since === undefined || entries.length === 0 || entries[0][0] !== since) {
        this.logger.warn('cache purges may have been missed while Redis was unreachable: the cache was emptied');
        this.cache.clear();
        this.lastId = await this.newestId();
        this.advance(this.lastId);
        return;
      }
      for (const [id, fields] of entries.slice(1)) {
        const purge = decodeFields(fields);
        if (purge && purge.origin !== this.origin) this.cache.purgeLocal(purge.selector);
        this.advance(id);
      }
    } catch (error) {
      this.logger.warn(`cache purge log unreadable (${(error as Error).message}): the cache was emptied`);
      this.cache.clear();
    }
  }

  /**
   * Rebuilds the disk tier once the purges it missed are known: replayed from its cursor, or,
   * when the log no longer covers it, the files are dropped. Retried while Redis is unreachable.
   */
  private async openDisk(): Promise<void> {
    const disk = this.cache.disk!;
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const plan = await this.diskPlan(await disk.readCursor());
        await this.cache.openDisk(plan);
        if (this.lastId !== undefined && disk.ready) disk.writeCursor(this.lastId);
        return;
      } catch (error) {
        if (attempt === 0) this.logger.warn(`disk cache waits for the purge log (${(error as Error).message})`);
        await sleep(Math.min(30_000, 1_000 * 2 ** attempt));
      }
    }
  }

  private async diskPlan(cursor: string | undefined): Promise<DiskOpenOptions> {
    const disk = this.cache.disk!;
    const client = this.redis.client;
    // One instance: its own purges removed the files directly.
    if (client === undefined) return { reset: false, purges: [] };
    this.lastId ??= await this.newestId();
    if (cursor === undefined) return { reset: await disk.holdsFiles(), purges: [] };
    const entries = await client.xrange(this.logKey, cursor, '+');
    if (entries.length === 0 || entries[0][0] !== cursor) {
      this.logger.warn('the disk cache missed purges older than the purge log: its files are dropped');
      return { reset: true, purges: [] };
    }
    const purges = [];
    for (const [id, fields] of entries.slice(1)) {
      const purge = decodeFields(fields);
      if (purge) purges.push(purgeMatch(purge.selector));
      this.advance(id);
    }
    return { reset: false, purges };
  }

  /** The newest log entry's id; an empty log gets a first entry, so every instance has a position. */
  private async newestId(): Promise<string> {
    const client = this.redis.client!;
    const [newest] = await client.xrevrange(this.logKey, '+', '-', 'COUNT', 1);
    if (newest) return newest[0];
    const id = await client.xadd(this.logKey, 'MAXLEN', '~', String(LOG_LENGTH), '*', 'o', this.origin, 'm', '');
    return id!;
  }

  private advance(id: string): void {
    if (this.lastId !== undefined && compareIds(id, this.lastId) <= 0) return;
    this.lastId = id;
    if (this.cache.disk?.ready) this.cache.disk.writeCursor(id);
  }

  private queueUnsent(selector: PurgeSelector): void {
    if (this.unsent.length >= RETRY_QUEUE_MAX) this.unsent.shift();
    this.unsent.push(selector);
    if (this.retryTimer || this.closed) return;
    const retry = async (): Promise<void> => {
      this.retryTimer = undefined;
      while (this.unsent.length > 0) {
        try {
          await this.send(this.unsent[0]);
          this.unsent.shift();
        } catch {
          if (!this.closed) this.retryTimer = setTimeout(() => void retry(), RETRY_INTERVAL_MS).unref();
          return;
        }
      }
    };
    this.retryTimer = setTimeout(() => void retry(), RETRY_INTERVAL_MS).unref();
  }
}

function normalize(selector: PurgeSelector): PurgeSelector {
  const prefix = selector.prefix ? normalizeSourcePrefix(selector.prefix) : '';
  return { tenantId: selector.tenantId, prefix };
}

function decode(body: string): PurgeSelector | undefined {
  if (body === '') return undefined;
  try {
    const message = JSON.parse(body) as PurgeMessage;
    if (typeof message.t !== 'string' || typeof message.p !== 'string') return undefined;
    return { tenantId: message.t, prefix: message.p };
  } catch {
    return undefined;
  }
}

/** A purge log entry's fields: `o <origin> m <message>`. */
function decodeFields(fields: string[]): { origin: string; selector: PurgeSelector } | undefined {
  const values: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) values[fields[i]] = fields[i + 1];
  const selector = decode(values.m ?? '');
  return selector ? { origin: values.o ?? '', selector } : undefined;
}

/** Redis stream ids are `<ms>-<seq>`. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}
