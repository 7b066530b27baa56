import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Pool } from 'undici';
import { BackendRegistry } from '../upstreams/backends/backend-registry.service';
import { GatewayConfig } from '../config/gateway-config';
import type { BackendConfig } from '../upstreams/backend-state/backend-pool';

export interface UpstreamClient {
  readonly pool: Pool;
  /** Path prefix of the backend URL (`http://host/imgproxy` → `/imgproxy`), '' when none. */
  readonly basePath: string;
}

/**
 * One undici connection pool per backend (keep-alive, at most `connectionsPerBackend` sockets),
 * created on first use and closed when the backend leaves the configuration or changes its URL.
 * Closing is graceful: requests already on the pool finish first.
 */
@Injectable()
export class UpstreamClients implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(UpstreamClients.name);
  private readonly clients = new Map<string, UpstreamClient & { url: string }>();
  private unsubscribe?: () => void;

  constructor(
    private readonly registry: BackendRegistry,
    private readonly config: GatewayConfig,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.registry.onChange((backends) => this.retain(backends));
  }

  for(backend: BackendConfig): UpstreamClient {
    const existing = this.clients.get(backend.id);
    if (existing && existing.url === backend.url) return existing;
    if (existing) this.close(existing);
    const url = new URL(backend.url);
    const { connectTimeoutMs, headersTimeoutMs, bodyIdleTimeoutMs, connectionsPerBackend } = this.config.proxy;
    const client = {
      url: backend.url,
      basePath: url.pathname.replace(/\/+$/, ''),
      pool: new Pool(url.origin, {
        connections: connectionsPerBackend,
        connect: { timeout: connectTimeoutMs },
        headersTimeout: headersTimeoutMs,
        bodyTimeout: bodyIdleTimeoutMs,
        // Below Node's and imgproxy's server-side keep-alive, so we never reuse a socket the
        // backend is about to close.
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 30_000,
      }),
    };
    this.clients.set(backend.id, client);
    return client;
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe?.();
    // By now the HTTP server has drained (graceful shutdown), so nothing is left in flight.
    await Promise.all([...this.clients.values()].map((c) => c.pool.destroy()));
    this.clients.clear();
  }

  private retain(backends: readonly BackendConfig[]): void {
    const urls = new Map(backends.map((b) => [b.id, b.url]));
    for (const [id, client] of this.clients) {
      if (urls.get(id) !== client.url) {
        this.clients.delete(id);
        this.close(client);
      }
    }
  }

  private close(client: UpstreamClient): void {
    client.pool.close().catch((error: Error) => this.logger.warn(`closing an upstream pool: ${error.message}`));
  }
}
