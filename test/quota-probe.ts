/**
 * Test harness of the rate-limit and quota e2e specs: the real gateway (AppModule, real
 * PostgreSQL and Redis) plus one probe route guarded exactly like the proxy route
 * (ApiKeyGuard → RateLimitGuard with the `proxy` route bucket → QuotaInterceptor), whose handler
 * does no upstream work and reports the bytes a proxied transfer would have moved. Also a
 * private redis-server the failure-policy tests can kill and restart.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Controller, Get, Module, Query, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import Redis from 'ioredis';
import { ApiKeyGuard } from '../src/plugins/key-auth/api-key.guard';
import { AuthModule } from '../src/plugins/key-auth/auth.module';
import { QuotaInterceptor } from '../src/plugins/quota/quota.interceptor';
import { RateLimitRoute } from '../src/plugins/rate-limiting/rate-limit-route.decorator';
import { RateLimitGuard } from '../src/plugins/rate-limiting/rate-limit.guard';
import { type TestApp, type TestAppOptions, createTestApp } from './support/test-app';

@Controller('probe')
class ProbeController {
  @Get()
  @UseGuards(ApiKeyGuard, RateLimitGuard)
  @RateLimitRoute('proxy')
  @UseInterceptors(QuotaInterceptor)
  probe(@Req() request: FastifyRequest, @Query('in') bytesIn?: string, @Query('out') bytesOut?: string) {
    // What the proxy does on its streams: the counted bytes are on request.gw before the response ends.
    request.gw.bytesIn = Number(bytesIn ?? 0);
    request.gw.bytesOut = Number(bytesOut ?? 0);
    return { ok: true };
  }
}

@Module({ imports: [AuthModule], controllers: [ProbeController] })
class ProbeModule {}

/** createTestApp() plus the probe route. */
export function createProbedApp(options: TestAppOptions = {}): Promise<TestApp> {
  return createTestApp({ ...options, imports: [ProbeModule] });
}

export interface Tenant {
  id: string;
  key: string;
}

/** A tenant with overrides and one key (scopes default: images:read, usage:read), via the admin API. */
export async function createTenant(gw: TestApp, overrides: { rateLimits?: object; quotas?: object } = {}): Promise<Tenant> {
  const email = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}@quota.example`;
  const created = await gw.admin('/admin/v1/tenants', { method: 'POST', json: { name: email, email } });
  if (created.status !== 201) throw new Error(`tenant creation: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  if (overrides.rateLimits || overrides.quotas) {
    const patched = await gw.admin(`/admin/v1/tenants/${id}`, { method: 'PATCH', json: overrides });
    if (patched.status !== 200) throw new Error(`tenant update: ${patched.status} ${await patched.text()}`);
  }
  const keyRes = await gw.admin(`/admin/v1/tenants/${id}/keys`, { method: 'POST', json: {} });
  if (keyRes.status !== 201) throw new Error(`key creation: ${keyRes.status} ${await keyRes.text()}`);
  const { key } = (await keyRes.json()) as { key: string };
  return { id, key };
}

/** Deletes every key of a prefix (a "Redis wipe" limited to one deployment). */
export async function wipeRedisPrefix(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url);
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) deleted += await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** A redis-server of our own, on a free port, that a test may kill and start again. */
export class OwnRedis {
  private child?: ChildProcess;

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    const redis = new OwnRedis(port);
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server unless it runs already; resolves once it answers PING. */
  async up(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: 'ignore',
    });
    // Ready when it answers PING.
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    const deadline = Date.now() + 10_000;
    try {
      while (Date.now() < deadline) {
        try {
          if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
          if ((await probe.ping()) === 'PONG') return;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      throw new Error(`redis-server on port ${this.port} did not answer within 10 s`);
    } finally {
      probe.disconnect();
    }
  }

  async down(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
}
