import { randomUUID } from 'node:crypto';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { RedisService } from '../redis/redis.service';

/** What changed: every cache entry derived from it is dropped on every instance. */
export type AuthInvalidation =
  | { kind: 'tenant'; id: string }
  | { kind: 'key'; id: string }
  | { kind: 'plan'; id: string }
  | { kind: 'all' };

export const AUTH_INVALIDATE_CHANNEL = 'auth-invalidate';

type Listener = (event: AuthInvalidation) => void;

/**
 * Cache invalidation for authentication data (keys, tenants, plans, allowlists) across
 * gateway instances (docs/tenants-and-keys.md: within 2 seconds). An admin write publishes after its
 * transaction commits; every instance, this one included, drops the affected entries. The
 * caches' TTL is the backstop when a message is lost (Redis down).
 *
 * `epoch` grows with every event, so a lookup that started before an invalidation can tell
 * that its result may be stale and must not be cached.
 */
@Injectable()
export class AuthInvalidationService implements OnModuleInit {
  private readonly logger = new Logger(AuthInvalidationService.name);
  private readonly listeners = new Set<Listener>();
  private currentEpoch = 0;
  /** Marks our own messages: they were applied when published, and applying the echo again
   * would only make concurrent lookups uncacheable for nothing. */
  private readonly origin = randomUUID();

  constructor(private readonly redis: RedisService) {}

  get epoch(): number {
    return this.currentEpoch;
  }

  async onModuleInit(): Promise<void> {
    await this.redis.subscribe(AUTH_INVALIDATE_CHANNEL, (message) => {
      const separator = message.indexOf('|');
      if (message.slice(0, separator) === this.origin) return;
      const event = decode(message.slice(separator + 1));
      if (event) this.apply(event);
    });
    // Revocations published while this instance was cut off from Redis never arrive: forget
    // every cached key, so the 2-second promise holds after an outage too.
    this.redis.onResubscribed(() => this.apply({ kind: 'all' }));
  }

  onInvalidate(listener: Listener): void {
    this.listeners.add(listener);
  }

  /**
   * Applies locally at once (read-your-writes on this instance), then tells the others. A
   * failed publish is logged, not thrown: the change is committed and the TTL bounds staleness.
   */
  async publish(...events: AuthInvalidation[]): Promise<void> {
    for (const event of events) {
      this.apply(event);
      await this.redis
        .publish(AUTH_INVALIDATE_CHANNEL, `${this.origin}|${encode(event)}`)
        .catch((error: Error) => this.logger.warn(`auth invalidation not published (caches expire by TTL): ${error.message}`));
    }
  }

  private apply(event: AuthInvalidation): void {
    this.currentEpoch++;
    for (const listener of this.listeners) listener(event);
  }
}

export function encode(event: AuthInvalidation): string {
  return event.kind === 'all' ? 'all' : `${event.kind}:${event.id}`;
}

export function decode(message: string): AuthInvalidation | undefined {
  if (message === 'all') return { kind: 'all' };
  const colon = message.indexOf(':');
  const kind = message.slice(0, colon);
  const id = message.slice(colon + 1);
  if (colon <= 0 || !id) return undefined;
  return kind === 'tenant' || kind === 'key' || kind === 'plan' ? { kind, id } : undefined;
}
