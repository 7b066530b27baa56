import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const ROOT = join(__dirname, '..');

/**
 * `npm run demo` end to end (README.md): the demo runs in its own process exactly as the script
 * runs it (TypeScript compiled on the fly instead of from dist), prints a signed URL that this
 * test fetches, and stops cleanly on Ctrl-C, removing its temporary data directory.
 */
describe('npm run demo', () => {
  it('prints a working signed image URL, the admin token and Swagger, and stops on SIGINT', async () => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/demo.ts'], {
      cwd: ROOT,
      // Only what a fresh shell would have: the demo must not need DATABASE_URL or REDIS_URL.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', SWC_NODE_PROJECT: join(ROOT, 'tsconfig.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    try {
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (output.includes('Try:')) resolve();
        };
        child.stdout.on('data', check);
        void exited.then((code) => reject(new Error(`demo exited with ${code} before it was ready:\n${output}`)));
      });

      const field = (label: string) => new RegExp(`${label}:\\s+(\\S+)`).exec(output)?.[1];
      const gateway = field('Gateway');
      expect(gateway).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(field('Swagger')).toBe(`${gateway}/docs`);
      expect(field('Admin token')).toMatch(/^\S{16,}$/);
      const dataDir = field('Data dir');
      expect(dataDir && existsSync(dataDir)).toBe(true);

      const signedUrl = new RegExp(`(${gateway}/t/\\S+)`).exec(output)?.[1];
      expect(signedUrl).toBeDefined();
      const res = await fetch(signedUrl!);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/webp');
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect({ format: meta.format, width: meta.width, height: meta.height }).toEqual({ format: 'webp', width: 300, height: 200 });

      // The admin token printed is the one the gateway accepts.
      const tenants = await fetch(`${gateway}/admin/v1/tenants`, { headers: { authorization: `Bearer ${field('Admin token')}` } });
      expect(tenants.status).toBe(200);
      const docs = await fetch(`${gateway}/docs-json`);
      expect(docs.status).toBe(200);
      expect(Object.keys((await docs.json()).paths)).toEqual(expect.arrayContaining(['/api/v1/images', '/t/{keyId}/{path}']));

      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(existsSync(dataDir!)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
