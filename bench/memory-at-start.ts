/**
 * What the gateway's memory at start is made of (docs/performance.md, Memory): `npm run build &&
 * node dist/bench/memory-at-start.js [--snapshot]`. Starts `dist/src/main.js` as an operator would,
 * on a real PostgreSQL and on the embedded one (PGlite), asks each for a report once it listens
 * (after a full collection: V8 heap spaces, external memory, modules loaded by package), and, with
 * `--snapshot`, summarises a heap snapshot of the first (self size by node type and by constructor).
 * Also measures what requiring each large dependency costs on its own, in a fresh process.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { projectRoot } from '../src/common/project-root';
import type { MemoryReport } from './memory-probe';

const DEFAULT_DATABASE = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

/** Dependencies whose own cost is measured; most are loaded at start, a few only on use. */
const PACKAGES = [
  '@nestjs/core',
  '@nestjs/platform-fastify',
  '@nestjs/swagger',
  '@nestjs/typeorm',
  'typeorm',
  'pg',
  'class-validator',
  'class-transformer',
  'ioredis',
  'prom-client',
  'pino',
  'nestjs-pino',
  '@nestjs/schedule',
  '@nestjs/terminus',
  '@nestjs/throttler',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/exporter-trace-otlp-http',
  '@electric-sql/pglite',
  '@electric-sql/pglite-socket',
  'undici',
  'rxjs',
  'jose',
  'yaml',
  'sharp',
];

const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

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

/** Starts main.js with the probe preloaded, waits until it listens, and returns its report. */
async function measureGateway(env: Record<string, string>, snapshot?: string): Promise<MemoryReport> {
  const root = projectRoot();
  const child: ChildProcess = fork(join(root, 'dist', 'src', 'main.js'), [], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...env },
    execArgv: ['--expose-gc', '-r', join(__dirname, 'memory-probe.js')],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const deadline = Date.now() + 60_000;
    while (!output.includes('imgproxy-gateway listening on')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the gateway did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Let start-up timers (first health checks, reloads) settle, as an idle instance would.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    return await new Promise<MemoryReport>((resolve) => {
      child.once('message', (message: { report: MemoryReport }) => resolve(message.report));
      child.send({ type: 'memory-report', snapshot });
    });
  } finally {
    child.kill('SIGKILL');
  }
}

/** RSS and heap a package adds when required alone into a fresh process (after full collections). */
function packageCost(name: string): { rssMiB: number; heapMiB: number; files: number } | { error: string } {
  const script = `
    const before = () => { gc(); gc(); return process.memoryUsage(); };
    const a = before(); const filesBefore = Object.keys(require.cache).length;
    require(${JSON.stringify(name)});
    const b = before();
    process.stdout.write(JSON.stringify({ rss: b.rss - a.rss, heap: b.heapUsed - a.heapUsed, files: Object.keys(require.cache).length - filesBefore }));`;
  try {
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { cwd: projectRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const { rss, heap, files } = JSON.parse(out) as { rss: number; heap: number; files: number };
    return { rssMiB: mib(rss), heapMiB: mib(heap), files };
  } catch (error) {
    return { error: (error as Error).message.split('\n')[0] };
  }
}

/** Self size by node type, and the largest constructors, of a .heapsnapshot. */
function summariseSnapshot(file: string) {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const byType: Record<string, number> = {};
  const byName: Record<string, number> = {};
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    byType[type] = (byType[type] ?? 0) + size;
    if (type === 'object' || type === 'closure' || type === 'code' || type === 'hidden' || type === 'array') {
      const name = `${type}: ${snapshot.strings[nodes[i + nameAt]].slice(0, 60)}`;
      byName[name] = (byName[name] ?? 0) + size;
    }
  }
  const top = (record: Record<string, number>, n: number) =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, size]) => ({ name, MiB: mib(size) }));
  return { byType: top(byType, 20), byName: top(byName, 25) };
}

function topModules(report: MemoryReport, n: number) {
  return Object.entries(report.modules)
    .sort((a, b) => b[1].sourceBytes - a[1].sourceBytes)
    .slice(0, n)
    .map(([name, g]) => ({ name, files: g.files, sourceKiB: Math.round(g.sourceBytes / 1024), loadedBy: g.loadedBy.slice(0, 4) }));
}

function describe(report: MemoryReport) {
  const files = Object.values(report.modules).reduce((n, g) => n + g.files, 0);
  const source = Object.values(report.modules).reduce((n, g) => n + g.sourceBytes, 0);
  return {
    rssMiB: mib(report.rss),
    heapTotalMiB: mib(report.heapTotal),
    heapUsedMiB: mib(report.heapUsed),
    externalMiB: mib(report.external),
    arrayBuffersMiB: mib(report.arrayBuffers),
    outsideHeapMiB: mib(report.rss - report.heapTotal - report.external),
    spacesMiB: Object.fromEntries(Object.entries(report.spaces).map(([name, bytes]) => [name, mib(bytes)])),
    builtins: report.builtins,
    moduleFiles: files,
    moduleSourceMiB: mib(source),
    packages: Object.keys(report.modules).length,
    modules: topModules(report, Infinity),
  };
}

async function main(): Promise<void> {
  const withSnapshot = process.argv.includes('--snapshot');
  const server = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE;
  const name = `igw_memory_${Date.now().toString(36)}`;
  const admin = new Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  const work = mkdtempSync(join(tmpdir(), 'igw-memory-'));
  const secrets = { ADMIN_TOKEN: 'memory-admin-token-0123456789', KEY_PEPPER: 'memory-pepper-0123456789', SECRETS_KEY: 'ef'.repeat(32) };
  const redisUrl = process.env.REDIS_URL ?? process.env.TEST_REDIS_URL ?? DEFAULT_REDIS;
  const node = execFileSync(process.execPath, ['--expose-gc', '-e', 'gc(); process.stdout.write(String(process.memoryUsage().rss))'], { encoding: 'utf8' });
  try {
    const snapshotFile = join(work, 'start.heapsnapshot');
    const postgres = await measureGateway(
      {
        NODE_ENV: 'production',
        ...secrets,
        DATABASE_URL: url.toString(),
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: `${name}:`,
        PORT: String(await freePort()),
        HOST: '127.0.0.1',
        BACKENDS: 'a=http://127.0.0.1:9|1',
        DATA_DIR: join(work, 'pg-data'),
      },
      withSnapshot ? snapshotFile : undefined,
    );
    const embedded = await measureGateway({
      NODE_ENV: 'development',
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      BACKENDS: 'a=http://127.0.0.1:9|1',
      DATA_DIR: join(work, 'embedded-data'),
    });
    const result = {
      emptyNodeRssMiB: mib(Number(node)),
      postgres: describe(postgres),
      embedded: describe(embedded),
      onlyWithEmbedded: Object.keys(embedded.modules).filter((m) => !(m in postgres.modules)),
      snapshot: withSnapshot ? summariseSnapshot(snapshotFile) : undefined,
      packages: Object.fromEntries(PACKAGES.map((p) => [p, packageCost(p)])),
    };
    const out = join(projectRoot(), 'bench', 'results', `memory-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(out, JSON.stringify(result, null, 2));
    process.stdout.write(`${JSON.stringify(result, null, 2)}\nwritten to ${out}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    const redis = new Redis(redisUrl);
    const keys = await redis.keys(`${name}:*`);
    if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
    const c = new Client({ connectionString: server });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
