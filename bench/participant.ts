/**
 * The IPC side of one benchmark participant running in its own process, so its CPU time and
 * memory are its own. Talks to the runner:
 *   → { type: 'ready', url }       once listening
 *   ← { type: 'usage', id, gc? }   → { type: 'usage', id, cpuMicros, rss, heapUsed, ...extra() }
 *   ← { type: 'stop' }             closes and exits
 */
export interface Usage {
  cpuMicros: number;
  rss: number;
  heapUsed: number;
  /** Socket writes on the gateway's Redis command connection. */
  redisWrites?: number;
  /** Per-step nanoseconds and calls (GATEWAY_STEP_TIMINGS=1), by section name. */
  timings?: Record<string, { nanos: number; calls: number }>;
  /** Processes the figures add up (a primary and its workers). */
  processes?: number;
  [other: string]: unknown;
}

export interface Started {
  url: string;
  close: () => Promise<unknown>;
  /** Participant-specific counters added to every usage answer. */
  extra?: () => Partial<Usage>;
  /** Replaces the process's own figures (a primary answers for its workers too). */
  usage?: (gc: boolean) => Promise<Usage>;
}

/** This process's CPU time and memory; with --expose-gc, optionally after a full collection. */
export function ownUsage(gc = false): Usage {
  // A collection first tells retained memory from garbage not yet collected.
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect) collect();
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return { cpuMicros: cpu.user + cpu.system, rss: memory.rss, heapUsed: memory.heapUsed, processes: 1 };
}

export function serveParticipant(name: string, start: () => Promise<Started>): void {
  start()
    .then((participant) => {
      process.on('message', (message: { type: string; id?: number; gc?: boolean }) => {
        if (message.type === 'usage') {
          const gc = message.gc === true;
          const usage = participant.usage ? participant.usage(gc) : Promise.resolve({ ...ownUsage(gc), ...participant.extra?.() });
          void usage.then((figures) => process.send?.({ type: 'usage', id: message.id, ...figures }));
        } else if (message.type === 'stop') {
          void participant.close().finally(() => process.exit(0));
        }
      });
      // The runner is gone (it crashed or was killed): a participant must not outlive it.
      process.once('disconnect', () => {
        setTimeout(() => process.exit(0), 5_000).unref();
        void participant.close().finally(() => process.exit(0));
      });
      process.send?.({ type: 'ready', url: participant.url });
    })
    .catch((error: Error) => {
      process.stderr.write(`bench ${name}: ${error.stack ?? error.message}\n`);
      process.exit(1);
    });
}

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}
