import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import sharp from 'sharp';
import { createGatewayApp } from './bootstrap/app.factory';
import { loadConfig } from './config/config.loader';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './database/embedded-postgres';
import { runMigrations } from './database/migration-runner';
import { ImgproxySigner } from './signing/imgproxy-signature';
import { buildImgproxyPath } from './signing/imgproxy-url';
import { startImgproxyWorker, type ImgproxyWorker } from './dev/imgproxy-worker/imgproxy-worker.server';

/**
 * `npm run demo` (README.md): a self-contained gateway on a fresh clone. Two imgproxy-compatible
 * workers (weights 70/30) sharing the uploads folder, the gateway on its embedded defaults
 * (PGlite, in-process counters) in a temporary data directory, a demo tenant and key created
 * through the admin API, a sample image uploaded through the tenant API, and a signed URL that
 * the demo fetches once itself to prove it works. Ctrl-C stops everything and removes the
 * temporary directory.
 */

export interface DemoOptions {
  /** Gateway port; 8080 by default (PORT), 0 picks a free one. */
  readonly port?: number;
  readonly host?: string;
  /** Kept after stop() when given; otherwise a temporary directory, removed at stop(). */
  readonly dataDir?: string;
}

export interface RunningDemo {
  readonly gatewayUrl: string;
  readonly swaggerUrl: string;
  readonly adminToken: string;
  readonly tenantId: string;
  readonly keyId: string;
  /** Shown once, as the admin API returned it: this is the demo tenant's key. */
  readonly apiKey: string;
  readonly imageId: string;
  /** Absolute signed URLs: the upload's ready URL and a custom one (WebP thumbnail). */
  readonly uploadUrl: string;
  readonly thumbnailUrl: string;
  /** What the demo's own fetch of `thumbnailUrl` returned. */
  readonly checked: { readonly status: number; readonly contentType: string; readonly width: number; readonly height: number };
  readonly dataDir: string;
  readonly workers: readonly string[];
  stop(): Promise<void>;
}

export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const temporary = options.dataDir === undefined;
  const dataDir = resolve(options.dataDir ?? mkdtempSync(join(tmpdir(), 'imgproxy-gateway-demo-')));
  const uploadsRoot = join(dataDir, 'uploads');
  mkdirSync(uploadsRoot, { recursive: true });
  // The pool's key, salt and secret exist only for this run: the gateway signs, the workers verify.
  const pool = { key: randomBytes(32).toString('hex'), salt: randomBytes(32).toString('hex'), secret: randomBytes(24).toString('base64url') };

  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    if (temporary) rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const workers: ImgproxyWorker[] = [];
    for (let i = 0; i < 2; i++) {
      const worker = await startImgproxyWorker({ keyHex: pool.key, saltHex: pool.salt, secret: pool.secret, root: uploadsRoot, maxRecordedRequests: 0 });
      cleanups.push(() => worker.close());
      workers.push(worker);
    }

    const { config } = loadConfig({
      // Embedded defaults only: the machine's DATABASE_URL, REDIS_URL etc. must not leak in.
      env: { NODE_ENV: 'development' },
      generateDevSecrets: true,
      overrides: {
        dataDir,
        server: { port: options.port ?? 8080, host: options.host ?? '127.0.0.1' },
        imgproxy: { key: pool.key, salt: pool.salt, secret: pool.secret },
        uploads: { root: uploadsRoot },
        backends: [
          { name: 'worker-a', url: workers[0].url, weight: 70 },
          { name: 'worker-b', url: workers[1].url, weight: 30 },
        ],
        healthCheck: { intervalSeconds: 5 },
        logging: { level: 'warn' },
      },
    });

    const embedded: EmbeddedPostgres = await startEmbeddedPostgres(config.database.embeddedDir);
    cleanups.push(() => embedded.close());
    config.database.url = embedded.url;
    // PGlite runs one query at a time and shares session state between connections.
    config.database.poolSize = 1;
    await runMigrations(embedded.url);

    const app: NestFastifyApplication = await createGatewayApp(config);
    cleanups.push(() => app.close());
    await app.listen(config.server.port, config.server.host);
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : config.server.port;
    const gatewayUrl = `http://${config.server.host}:${port}`;
    const adminToken = config.security.adminToken ?? '';

    const admin = (path: string, body: unknown) =>
      call(`${gatewayUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const tenant = (await admin('/admin/v1/tenants', { name: 'Demo tenant', email: 'demo@imgproxy-gateway.example' })) as { id: string };
    const key = (await admin(`/admin/v1/tenants/${tenant.id}/keys`, {
      name: 'demo',
      scopes: ['images:read', 'images:write', 'usage:read'],
    })) as { keyId: string; key: string; signingKey: string; signingSalt: string };

    const image = (await call(`${gatewayUrl}/api/v1/images`, {
      method: 'POST',
      headers: { 'x-api-key': key.key, 'content-type': 'image/png' },
      body: await sampleImage(),
    })) as { id: string; source: string; url: string };

    // A URL of our own, signed exactly as an imgproxy URL builder would sign it.
    const signer = new ImgproxySigner(key.signingKey, key.signingSalt);
    const thumbnailPath = signer.signPath(buildImgproxyPath('/rs:fill:300:200/g:ce/f:webp', { encoding: 'base64', url: image.source }));
    const thumbnailUrl = `${gatewayUrl}/t/${key.keyId}${thumbnailPath}`;
    const response = await fetch(thumbnailUrl);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200) throw new Error(`the demo image URL answered ${response.status}: ${bytes.toString().slice(0, 200)}`);
    const metadata = await sharp(bytes).metadata();

    return {
      gatewayUrl,
      swaggerUrl: `${gatewayUrl}/docs`,
      adminToken,
      tenantId: tenant.id,
      keyId: key.keyId,
      apiKey: key.key,
      imageId: image.id,
      uploadUrl: `${gatewayUrl}${image.url}`,
      thumbnailUrl,
      checked: {
        status: response.status,
        contentType: response.headers.get('content-type') ?? '',
        width: metadata.width ?? 0,
        height: metadata.height ?? 0,
      },
      dataDir,
      workers: workers.map((w) => w.url),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** POST/GET a JSON API of the demo gateway; any non-2xx answer stops the demo with its body. */
async function call(url: string, init: RequestInit): Promise<unknown> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

/** A 1200×800 PNG made on the spot, so the demo needs no asset files. */
function sampleImage(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#0f4c81"/><stop offset="1" stop-color="#f28c28"/></linearGradient></defs>
    <rect width="1200" height="800" fill="url(#g)"/>
    <circle cx="900" cy="260" r="140" fill="#ffffff" fill-opacity="0.25"/>
    <text x="80" y="700" font-family="sans-serif" font-size="72" fill="#ffffff">imgproxy-gateway demo</text>
  </svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

function describe(demo: RunningDemo): string {
  return [
    '',
    'imgproxy-gateway demo is running (Ctrl-C stops everything)',
    '',
    `  Gateway:      ${demo.gatewayUrl}`,
    `  Swagger:      ${demo.swaggerUrl}`,
    `  Admin token:  ${demo.adminToken}`,
    `  Workers:      ${demo.workers.join(' (weight 70), ')} (weight 30)`,
    `  Data dir:     ${demo.dataDir} (removed on exit)`,
    '',
    `  Demo tenant:  ${demo.tenantId}`,
    `  API key:      ${demo.apiKey}   (shown once; X-API-Key header)`,
    `  Uploaded:     image ${demo.imageId}`,
    '',
    `  Signed URL (checked: ${demo.checked.status} ${demo.checked.contentType} ${demo.checked.width}x${demo.checked.height}):`,
    `    ${demo.thumbnailUrl}`,
    '  The upload\'s own ready URL (fit into 1024x1024):',
    `    ${demo.uploadUrl}`,
    '',
    'Try:',
    `  curl -o thumb.webp '${demo.thumbnailUrl}'`,
    `  curl -H 'X-API-Key: ${demo.apiKey}' ${demo.gatewayUrl}/api/v1/images`,
    `  curl -H 'X-API-Key: ${demo.apiKey}' -F file=@photo.jpg ${demo.gatewayUrl}/api/v1/images`,
    `  curl -H 'Authorization: Bearer ${demo.adminToken}' ${demo.gatewayUrl}/admin/v1/tenants`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const port = process.env.PORT === undefined ? undefined : Number(process.env.PORT);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new Error('PORT must be a port number');
  }
  const demo = await startDemo({ port });
  process.stdout.write(`${describe(demo)}\n`);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping the demo\n`);
    demo.stop().then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`demo: stop failed: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`demo failed: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
