import cluster from 'node:cluster';
import { Logger } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { GatewayConfig } from '../config/gateway-config';

/**
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to the deadline, then
 * cut their connections), then close the application so every module flushes its pending
 * writes (usage counters, request logs) and closes its pools, and exit 0.
 *
 * Nest's own shutdown hooks run module destroy hooks before the HTTP server stops, which
 * would pull storage away from requests still in flight; draining first avoids that.
 */
export function installGracefulShutdown(app: NestFastifyApplication, config: GatewayConfig, afterClose: () => Promise<unknown>): void {
  const logger = new Logger('Shutdown');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal} received: draining in-flight requests`);
    const server = app.getHttpServer();
    const deadline = setTimeout(() => {
      logger.warn(`drain deadline (${config.server.shutdownTimeoutMs} ms) reached: closing remaining connections`);
      server.closeAllConnections();
    }, config.server.shutdownTimeoutMs);
    deadline.unref();
    try {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      clearTimeout(deadline);
      await app.close();
      await afterClose();
      logger.log('stopped cleanly');
      process.exit(0);
    } catch (error) {
      logger.error(`shutdown failed: ${(error as Error).message}`);
      process.exit(1);
    }
  };
  // A worker of WORKERS > 1 gets the signal from its primary and often from its process group
  // too (Ctrl-C, `kill -- -pgid`): the repeat must not kill it mid-drain. A single process keeps
  // the default for a repeat, so a second Ctrl-C still ends it at once.
  const listen = cluster.isWorker ? process.on.bind(process) : process.once.bind(process);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) listen(signal, () => void stop(signal));
}
