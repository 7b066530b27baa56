import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

export interface EmbeddedPostgres {
  url: string;
  close(): Promise<void>;
}

/**
 * PGlite (PostgreSQL compiled to WebAssembly) served over the wire protocol on loopback, so
 * the same pg/TypeORM code and SQL migrations run on a fresh machine with nothing installed.
 * For a first run and the demo only: queries run one at a time and sessions share state.
 */
export async function startEmbeddedPostgres(dir: string): Promise<EmbeddedPostgres> {
  // Loaded only when used: a gateway with DATABASE_URL never pays PGlite's memory.
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const dataDir = resolve(dir);
  mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  const [host, port] = server.getServerConn().split(':');
  return {
    url: `postgres://postgres@${host}:${port}/postgres`,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}
