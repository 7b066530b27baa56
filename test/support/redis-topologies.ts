/**
 * Real Redis topologies a spec starts and stops itself, on free ports under a temporary
 * directory: a 3-master Redis Cluster, and a master watched by one sentinel. Both need the
 * `redis-server` and `redis-cli` binaries of the machine (the same ones the other specs use).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';

const run = promisify(execFile);

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free port whose cluster-bus port (port + 10000) is free too. Picked at random in a range
 * well below the ephemeral ports, so that an outgoing connection is unlikely to take it.
 */
async function freePortPair(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function answersPing(port: number): Promise<true | undefined> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG' ? true : undefined;
  } finally {
    probe.disconnect();
  }
}

async function stopAll(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }),
  );
}

/** Three masters, no replicas, every slot assigned; `url` is what `redis.url` takes in cluster mode. */
export class OwnRedisCluster {
  private constructor(
    readonly ports: readonly number[],
    private readonly dir: string,
    private readonly children: ChildProcess[],
  ) {}

  private static spawnNode(dir: string, port: number): ChildProcess {
    return spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
      { stdio: 'ignore' },
    );
  }

  static async start(masters = 3): Promise<OwnRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'igw-redis-cluster-'));
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) ports.push(await freePortPair(taken));
    const children = ports.map((port) => OwnRedisCluster.spawnNode(dir, port));
    const cluster = new OwnRedisCluster(ports, dir, children);
    try {
      for (const port of ports) await until(`cluster node ${port} answers PING`, () => answersPing(port));
      await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
      await cluster.waitUntilOk();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Index in `ports` of the master serving `key`'s slot. */
  async ownerOf(key: string): Promise<number> {
    const node = new Redis({ port: this.ports[0], host: '127.0.0.1' });
    try {
      const slot = await node.cluster('KEYSLOT', key);
      const range = (await node.cluster('SLOTS')).find(([start, end]) => slot >= start && slot <= end);
      const master = range?.[2];
      if (!master) throw new Error(`no master serves slot ${slot}`);
      return this.ports.indexOf(master[1]);
    } finally {
      node.disconnect();
    }
  }

  /** Kills one master (SIGKILL): its slots stop answering; the cluster has no replica to promote. */
  async kill(index: number): Promise<void> {
    await stopAll([this.children[index]]);
  }

  /**
   * Starts a killed master again on its port with its nodes file, so it rejoins with its slots
   * (empty: nothing is persisted); resolves once every node reports cluster_state:ok.
   */
  async restart(index: number): Promise<void> {
    this.children[index] = OwnRedisCluster.spawnNode(this.dir, this.ports[index]);
    await this.waitUntilOk();
  }

  private async waitUntilOk(): Promise<void> {
    for (const port of this.ports) {
      await until(`cluster_state:ok on ${port}`, async () => {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']);
        return stdout.includes('cluster_state:ok') ? true : undefined;
      });
    }
  }

  get url(): string {
    return this.ports.map((port) => `redis://127.0.0.1:${port}`).join(',');
  }

  /** How many keys starting with `prefix` each master holds, in the order of `ports`. */
  async keysPerNode(prefix: string): Promise<number[]> {
    return Promise.all(
      this.ports.map(async (port) => {
        const node = new Redis({ port, host: '127.0.0.1' });
        try {
          let count = 0;
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
            count += keys.length;
            cursor = next;
          } while (cursor !== '0');
          return count;
        } finally {
          node.disconnect();
        }
      }),
    );
  }

  async stop(): Promise<void> {
    await stopAll(this.children);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One master and one sentinel monitoring it as `name` (quorum 1). */
export class OwnRedisSentinel {
  private constructor(
    readonly masterPort: number,
    readonly sentinelPort: number,
    readonly name: string,
    private readonly dir: string,
    private readonly children: readonly ChildProcess[],
  ) {}

  static async start(name = 'mymaster'): Promise<OwnRedisSentinel> {
    const dir = mkdtempSync(join(tmpdir(), 'igw-redis-sentinel-'));
    const taken = new Set<number>();
    const masterPort = await freePortPair(taken);
    const sentinelPort = await freePortPair(taken);
    // A sentinel rewrites its configuration file, so it gets one of its own in the temp dir.
    const config = join(dir, 'sentinel.conf');
    writeFileSync(config, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${name} 127.0.0.1 ${masterPort} 1\n`);
    const master = spawn('redis-server', ['--port', String(masterPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    const topology = new OwnRedisSentinel(masterPort, sentinelPort, name, dir, [master, sentinel]);
    try {
      await until(`master ${masterPort} answers PING`, () => answersPing(masterPort));
      await until(`sentinel ${sentinelPort} names the master`, async () => {
        const { stdout } = await run('redis-cli', ['-p', String(sentinelPort), 'sentinel', 'get-master-addr-by-name', name]);
        return stdout.includes(String(masterPort)) ? true : undefined;
      });
    } catch (error) {
      await topology.stop();
      throw error;
    }
    return topology;
  }

  /** What `redis.url` takes in sentinel mode: the sentinels, not the master. */
  get url(): string {
    return `redis://127.0.0.1:${this.sentinelPort}`;
  }

  async stop(): Promise<void> {
    await stopAll(this.children);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
