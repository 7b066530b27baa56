import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import Redis from 'ioredis';

/** Server-wide Redis counters: calls per command (commands inside scripts included) and CPU. */
export interface RedisStats {
  calls: Record<string, number>;
  cpuMicros: number;
}

/**
 * A Redis server of the run's own on a free loopback port (no persistence), when `redis-server`
 * is installed: its INFO commandstats and CPU then count the gateway's commands only. Undefined
 * when the binary is missing; the runner then uses a shared server and says so.
 */
export async function startPrivateRedis(): Promise<{ url: string; stop: () => Promise<void> } | undefined> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // Refused until the server listens: the error is the answer, not an event to report.
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch (error) {
      probe.disconnect();
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new Error(`private redis-server on port ${port} did not start: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function redisStats(client: Redis): Promise<RedisStats> {
  const [commandstats, cpu] = await Promise.all([client.info('commandstats'), client.info('cpu')]);
  const calls: Record<string, number> = {};
  for (const match of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]] = Number(match[2]);
  const used = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls, cpuMicros: Math.round((used('used_cpu_sys') + used('used_cpu_user')) * 1e6) };
}

/** Commands and Redis CPU between two readings, leaving out the runner's own INFO calls. */
export function redisDelta(before: RedisStats, after: RedisStats): { commands: number; cpuMicros: number; byCommand: Record<string, number> } {
  const byCommand: Record<string, number> = {};
  let commands = 0;
  for (const [name, calls] of Object.entries(after.calls)) {
    if (name === 'info' || name === 'monitor') continue;
    const delta = calls - (before.calls[name] ?? 0);
    if (delta <= 0) continue;
    byCommand[name] = delta;
    commands += delta;
  }
  return { commands, cpuMicros: after.cpuMicros - before.cpuMicros, byCommand };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
