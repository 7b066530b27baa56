/** The backend or the baseline proxy in its own process: `node child.js backend|baseline`. */
import { startBaselineProxy } from './baseline-proxy';
import { startBenchBackend } from './bench-backend';
import { requiredEnv, serveParticipant } from './participant';

const role = process.argv[2] ?? '';
serveParticipant(role, async () => {
  const { server, url } = role === 'baseline' ? await startBaselineProxy(requiredEnv('BENCH_UPSTREAM')) : await startBenchBackend();
  return { url, close: () => new Promise((resolve) => server.close(resolve)) };
});
