import { startImgproxyWorker } from './imgproxy-worker.server';

/**
 * Runs the development imgproxy-compatible worker with imgproxy's own environment variables, so
 * the demo and docker compose can swap it for real imgproxy without changing the gateway:
 * PORT (8080), HOST (127.0.0.1), IMGPROXY_KEY, IMGPROXY_SALT, IMGPROXY_SECRET,
 * IMGPROXY_LOCAL_FILESYSTEM_ROOT (required).
 */
async function main(): Promise<void> {
  const env = process.env;
  const problems: string[] = [];
  const port = env.PORT === undefined ? 8080 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push('PORT must be a port number');
  const root = env.IMGPROXY_LOCAL_FILESYSTEM_ROOT;
  if (!root) problems.push('IMGPROXY_LOCAL_FILESYSTEM_ROOT is required');
  const keyHex = env.IMGPROXY_KEY || undefined;
  const saltHex = env.IMGPROXY_SALT || undefined;
  if ((keyHex === undefined) !== (saltHex === undefined)) problems.push('IMGPROXY_KEY and IMGPROXY_SALT go together');
  if (problems.length > 0 || !root) {
    console.error(`imgproxy worker: invalid configuration:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
    return;
  }

  // Surplus request records would only grow memory in a long-running process.
  const worker = await startImgproxyWorker({
    port,
    host: env.HOST || '127.0.0.1',
    keyHex,
    saltHex,
    secret: env.IMGPROXY_SECRET || undefined,
    root,
    maxRecordedRequests: 0,
  });
  if (process.send) {
    // Forked by the gateway (src/dev/imgproxy-worker/imgproxy-worker.process.ts): it reports the
    // address itself, in its own log shape, so this process prints nothing.
    process.send({ type: 'listening', url: worker.url });
  } else {
    process.stdout.write(
      `imgproxy worker listening on ${worker.url} (root ${root}, ${keyHex ? 'signed URLs' : 'unsigned URLs'}, ` +
        `${env.IMGPROXY_SECRET ? 'secret required' : 'no secret'})\n`,
    );
  }

  const stop = (): void => {
    worker.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('imgproxy worker: failed to close', error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // The IPC channel closes when the gateway exits, however it exits (even SIGKILL): no orphan.
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  console.error('imgproxy worker: failed to start', error);
  process.exit(1);
});
