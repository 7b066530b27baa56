import { EventEmitter } from 'node:events';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { GatewayConfig } from '../config/gateway-config';
import { type RedisClient, type RedisConnectionRole, createRedisConnection } from './redis-connection.factory';

type MessageHandler = (message: string) => void;

/**
 * The one owner of the Redis connections. Without `redis.url` the gateway runs in
 * single-instance mode: `client` is undefined, counters live in process and pub/sub is a
 * local event bus, so callers publish and subscribe the same way in both modes.
 *
 * With `redis.url`, `redis.mode` picks the client: one server or a Sentinel-managed master
 * (`Redis`), or a Redis Cluster (`Cluster`). Callers that send several keys in one command or
 * pipeline check `client.isCluster`: a cluster rejects keys of different slots (CROSSSLOT).
 * Classic PUBLISH/SUBSCRIBE works through any cluster node (the cluster bus forwards messages).
 */
@Injectable()
export class RedisService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  readonly prefix: string;
  readonly client?: RedisClient;
  private subscriber?: RedisClient;
  private readonly localBus = new EventEmitter();
  private readonly handlers = new Map<string, Set<MessageHandler>>();
  private readonly resubscribedHandlers = new Set<() => void>();

  constructor(private readonly config: GatewayConfig) {
    this.prefix = config.redis.keyPrefix;
    this.localBus.setMaxListeners(0);
    if (config.redis.url) this.client = this.connect('commands');
  }

  get enabled(): boolean {
    return this.client !== undefined;
  }

  /** True when the command connection is up; hot-path callers check this before a call. */
  get ready(): boolean {
    return this.client?.status === 'ready';
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  async onModuleInit(): Promise<void> {
    if (!this.client) {
      this.logger.warn(
        'REDIS_URL is not set: rate limits, usage counters and cache invalidation are kept in process. ' +
          'This mode is for a single gateway instance only.',
      );
      return;
    }
    // Start even if Redis is down: the failure policies of each feature take over until it answers.
    await this.client.connect().catch((error: Error) => this.logger.warn(`Redis not reachable yet: ${error.message}`));
  }

  async publish(channel: string, message: string): Promise<void> {
    const fullChannel = this.key('ch', channel);
    if (!this.client) {
      this.localBus.emit(fullChannel, message);
      return;
    }
    await this.client.publish(fullChannel, message);
  }

  /** Delivers every message of `channel`, from this instance and from every other one. */
  async subscribe(channel: string, handler: MessageHandler): Promise<void> {
    const fullChannel = this.key('ch', channel);
    if (!this.config.redis.url) {
      this.localBus.on(fullChannel, handler);
      return;
    }
    let set = this.handlers.get(fullChannel);
    if (!set) {
      set = new Set();
      this.handlers.set(fullChannel, set);
    }
    set.add(handler);
    if (!this.subscriber) {
      this.subscriber = this.connect('subscriber');
      this.subscriber.on('message', (ch: string, message: string) => {
        for (const h of this.handlers.get(ch) ?? []) h(message);
      });
      let connectedBefore = false;
      this.subscriber.on('ready', () => {
        if (connectedBefore) for (const h of this.resubscribedHandlers) h();
        connectedBefore = true;
      });
      await this.subscriber.connect().catch((error: Error) => this.logger.warn(`Redis subscriber: ${error.message}`));
    }
    // Not awaited: while Redis is down the subscription waits in the offline queue and start-up
    // must not wait with it; ioredis subscribes once connected and again after every reconnect.
    this.subscriber.subscribe(fullChannel).catch((error: Error) => this.logger.warn(`subscribe ${channel}: ${error.message}`));
  }

  /**
   * Called when the subscriber connection is back after an outage. Messages published meanwhile
   * were lost (pub/sub keeps nothing), so subscribers resynchronise: caches drop what they hold,
   * registries reload, instead of waiting for their TTLs.
   */
  onResubscribed(handler: () => void): void {
    this.resubscribedHandlers.add(handler);
  }

  async ping(): Promise<number> {
    if (!this.client) return 0;
    const started = process.hrtime.bigint();
    await this.client.ping();
    return Number(process.hrtime.bigint() - started) / 1e6;
  }

  async onApplicationShutdown(): Promise<void> {
    // QUIT only on a live connection: on a dead one it would wait in the offline queue forever.
    await Promise.all(
      [this.client, this.subscriber].map((c) => {
        if (!c || c.status === 'end') return undefined;
        if (c.status !== 'ready') return c.disconnect();
        return c.quit().catch(() => c.disconnect());
      }),
    );
    this.localBus.removeAllListeners();
  }

  private connect(role: RedisConnectionRole): RedisClient {
    const client = createRedisConnection(this.config.redis, role);
    let lastWarn = 0;
    client.on('error', (error: Error) => {
      // Throttled: a dead Redis emits an error per reconnect attempt.
      if (Date.now() - lastWarn > 10_000) {
        lastWarn = Date.now();
        this.logger.warn(`Redis ${role} connection: ${error.message}`);
      }
    });
    return client;
  }
}
