/** A benchmark peer in its own process: `node child.js backend|baseline|reply-from|nest`. */
import { startBaselineProxy } from './baseline-proxy';
import { startBenchBackend } from './bench-backend';
import { startNestProxy } from './nest-proxy';
import { requiredEnv, serveParticipant, type Started } from './participant';
import { startReplyFromProxy } from './reply-from-proxy';

const role = process.argv[2] ?? '';

async function start(): Promise<Started> {
  switch (role) {
    case 'backend': {
      const { server, url } = await startBenchBackend();
      return { url, close: () => new Promise((resolve) => server.close(resolve)) };
    }
    case 'baseline': {
      const { server, url } = await startBaselineProxy(requiredEnv('BENCH_UPSTREAM'));
      return { url, close: () => new Promise((resolve) => server.close(resolve)) };
    }
    case 'reply-from': {
      const { app, url } = await startReplyFromProxy(requiredEnv('BENCH_UPSTREAM'));
      return { url, close: () => app.close() };
    }
    case 'nest': {
      const { app, url } = await startNestProxy(requiredEnv('BENCH_UPSTREAM'));
      return { url, close: () => app.close() };
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

serveParticipant(role, start);
