import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { GatewayProcess, freePort, spawnBuiltGateway, waitUntilReady } from './support/gateway-process';

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..');
const SAMPLE = join(ROOT, 'docs', 'sample.jpg');
const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);

/** Only what a fresh shell on a fresh clone has: no DATABASE_URL, REDIS_URL, BACKENDS or secrets. */
function freshEnv(dataDir: string, port: number): Record<string, string> {
  return { NODE_ENV: 'development', DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' };
}

function jsonLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

/** The README's first-run block: the start command, then the commands after it. */
function readmeCommands(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  expect(blocks[0].trim()).toBe('npm install && npm run build && npm start');
  return blocks[1];
}

describe('npm start on embedded defaults, built, on a fresh clone', () => {
  let dataDir: string;
  let gw: GatewayProcess;
  let adminToken: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'igw-first-run-'));
    gw = spawnBuiltGateway(freshEnv(join(dataDir, 'data'), await freePort()));
    await waitUntilReady(gw, '/health/ready', 60_000);
    adminToken = (JSON.parse(readFileSync(join(dataDir, 'data', 'dev-secrets.json'), 'utf8')) as { adminToken: string }).adminToken;
  });

  afterAll(async () => {
    if (gw.child.exitCode === null) {
      gw.child.kill('SIGKILL');
      await gw.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes JSON from the first line, the generated admin token among the first three, and no Nest wiring at info', () => {
    const lines = jsonLines(gw.output());
    const tokenAt = lines.findIndex((l) => String(l.msg).includes(adminToken));
    expect(tokenAt).toBeGreaterThanOrEqual(0);
    expect(tokenAt).toBeLessThan(3);
    expect(lines[tokenAt].msg).toMatch(/development admin token \(generated now/);
    for (const line of lines) expect(line).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
    const contexts = new Set(lines.map((l) => l.context));
    for (const nest of ['RoutesResolver', 'RouterExplorer', 'InstanceLoader', 'NestFactory', 'NestApplication']) expect(contexts).not.toContain(nest);
    expect(gw.output()).not.toMatch(/Mapped \{/);
    // The whole start fits in a screen.
    expect(lines.length).toBeLessThan(15);
  });

  it('says in one line that it runs the development worker as backend dev-worker', () => {
    const lines = jsonLines(gw.output()).filter((l) => l.context === 'DevWorker');
    expect(lines).toHaveLength(1);
    expect(lines[0].msg).toMatch(/backend "dev-worker" on http:\/\/127\.0\.0\.1:\d+ .*root .*uploads/);
    expect(existsSync(join(dataDir, 'data', 'uploads'))).toBe(true);
  });

  it('health-checks the worker like any backend and is ready only with it', async () => {
    const report = await (await fetch(`${gw.url}/health/backends`)).json();
    expect(report.backends).toEqual([expect.objectContaining({ name: 'dev-worker', healthy: true, available: true, lastCheckOk: true })]);
    const ready = await fetch(`${gw.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect((await ready.json()).details.backends).toMatchObject({ status: 'up', pools: 1 });
  });

  it("gets a processed image back with the README's four commands, as HTTP calls", async () => {
    const admin = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
    const tenant = await fetch(`${gw.url}/admin/v1/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'Acme', email: 'ops@acme.example' }) });
    expect(tenant.status).toBe(201);
    const { id } = await tenant.json();

    const key = await fetch(`${gw.url}/admin/v1/tenants/${id}/keys`, { method: 'POST', headers: admin, body: '{}' });
    expect(key.status).toBe(201);
    const created = await key.json();
    expect(created.scopes).toEqual(['images:read', 'images:write', 'usage:read']);

    const form = new FormData();
    form.append('file', new Blob([readFileSync(SAMPLE)], { type: 'image/jpeg' }), 'sample.jpg');
    const upload = await fetch(`${gw.url}/api/v1/images`, { method: 'POST', headers: { 'x-api-key': created.key }, body: form });
    expect(upload.status).toBe(201);
    const image = await upload.json();
    expect(image).toMatchObject({ type: 'image/jpeg', width: 1200, height: 800, url: expect.stringMatching(/^\/t\//) });

    const res = await fetch(`${gw.url}${image.url}`, { headers: { 'x-request-id': 'first-run-fetch' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.subarray(0, 3)).toEqual(JPEG_MAGIC);
    // Fitted into 1024x1024 (rs:fit of the upload's URL): rendered, not the original passed through.
    const meta = await sharp(body).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual({ width: 1024, height: 683 });
    await new Promise((r) => setTimeout(r, 200));
    const line = jsonLines(gw.output()).find((l) => l.requestId === 'first-run-fetch');
    expect(line).toMatchObject({ status: 200, backend: 'dev-worker' });
  });

  it('runs the README block verbatim with bash and curl', async () => {
    const work = join(dataDir, 'readme');
    const port = new URL(gw.url).port;
    const script = readmeCommands()
      .replaceAll('./data/', `${join(dataDir, 'data')}/`)
      .replaceAll('localhost:8080', `127.0.0.1:${port}`)
      .replaceAll('docs/sample.jpg', SAMPLE)
      // Tenant emails are unique; the HTTP test above already used this one.
      .replace('ops@acme.example', 'readme@acme.example');
    mkdirSync(work);
    await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { cwd: work, timeout: 30_000 });
    const out = readFileSync(join(work, 'sample-1024.jpg'));
    expect(out.subarray(0, 3)).toEqual(JPEG_MAGIC);
    expect((await sharp(out).metadata()).width).toBe(1024);
  });

  it('stops the worker with the gateway on SIGTERM', async () => {
    const pid = Number(/\(pid (\d+),/.exec(gw.output())?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(() => process.kill(pid, 0)).not.toThrow();
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('runs the worker again on the next start, and stops it only after draining on a Ctrl-C', async () => {
    // One process at a time on an embedded database directory.
    if (gw.child.exitCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    const restarted = spawnBuiltGateway(freshEnv(join(dataDir, 'data'), await freePort()), { ownProcessGroup: true });
    try {
      await waitUntilReady(restarted, '/health/ready', 60_000);
      expect(restarted.output()).toMatch(/development admin token: in /);
      const again = await (await fetch(`${restarted.url}/health/backends`)).json();
      expect(again.backends).toEqual([expect.objectContaining({ name: 'dev-worker', healthy: true })]);
    } finally {
      // Ctrl-C signals the whole foreground group: the worker must not die before the gateway drains.
      process.kill(-restarted.child.pid!, 'SIGINT');
      expect(await restarted.exited).toBe(0);
    }
    const lines = jsonLines(restarted.output());
    expect(lines.filter((l) => l.context === 'DevWorker').map((l) => l.level)).toEqual([30]);
    expect(lines.at(-1)).toMatchObject({ context: 'Shutdown', msg: 'stopped cleanly' });
  });

  it('no longer runs the worker once a backend is configured', async () => {
    // The address needs no server: only the backend list is looked at.
    const withBackend = spawnBuiltGateway({ ...freshEnv(join(dataDir, 'data'), await freePort()), BACKENDS: 'real=http://127.0.0.1:9|1' });
    try {
      await waitUntilReady(withBackend, '/health/live', 60_000);
      const report = await (await fetch(`${withBackend.url}/health/backends`)).json();
      expect(report.backends.map((b: { name: string }) => b.name)).toEqual(['real']);
      const lines = jsonLines(withBackend.output()).filter((l) => l.context === 'DevWorker');
      expect(lines.map((l) => l.msg)).toEqual(['removed backend dev-worker of an earlier run: other backends are configured']);
    } finally {
      withBackend.child.kill('SIGTERM');
      await withBackend.exited;
    }
  });
});

describe('a first start on a port already in use', () => {
  let blocker: Server;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => blocker.close(resolve));
  });

  it('still prints the generated admin token, then EADDRINUSE once, plainly, and exits 1', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'igw-port-taken-'));
    const dataDir = join(parent, 'data');
    const gw = spawnBuiltGateway(freshEnv(dataDir, port));
    expect(await gw.exited).toBe(1);
    const { adminToken } = JSON.parse(readFileSync(join(dataDir, 'dev-secrets.json'), 'utf8')) as { adminToken: string };
    rmSync(parent, { recursive: true, force: true });
    const lines = jsonLines(gw.output());
    expect(lines[0].msg).toContain(adminToken);
    const refusals = lines.filter((l) => JSON.stringify(l).includes('EADDRINUSE'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ level: 50, msg: `cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE); stop the other process or choose another PORT / HOST` });
    expect(gw.output()).not.toMatch(/\n\s+at /);
  });
});

describe('the built gateway in production with the example secrets', () => {
  it('refuses to start, naming each variable that holds a placeholder', async () => {
    const gw = spawnBuiltGateway({
      NODE_ENV: 'production',
      PORT: String(await freePort()),
      // Refused before anything is written there.
      DATA_DIR: join(tmpdir(), 'igw-placeholders-never-created'),
      // docker/gateway.env.example as copied, and the compose file's URLs built from it.
      ADMIN_TOKEN: 'change-me',
      KEY_PEPPER: 'change-me',
      SECRETS_KEY: 'change-me',
      DATABASE_URL: 'postgres://gateway:change-me@postgres:5432/gateway',
      REDIS_URL: 'redis://:change-me@redis:6379/0',
    });
    expect(await gw.exited).toBe(78);
    const [line] = jsonLines(gw.output());
    expect(line.problems).toEqual(['ADMIN_TOKEN', 'KEY_PEPPER', 'SECRETS_KEY', 'DATABASE_URL', 'REDIS_URL'].map((name) => expect.stringMatching(new RegExp(`^${name} \\(.*placeholder`))));
  });
});
