/**
 * The IPC side of one benchmark participant running in its own process, so its CPU time and
 * memory are its own. Talks to the runner:
 *   → { type: 'ready', url }       once listening
 *   ← { type: 'usage', gc? }       → { type: 'usage', cpuMicros, rss, heapUsed, ...extra() }
 *   ← { type: 'stop' }             closes and exits
 */
export interface Started {
  url: string;
  close: () => Promise<unknown>;
  /** Participant-specific counters added to every usage answer. */
  extra?: () => Record<string, number>;
}

export function serveParticipant(name: string, start: () => Promise<Started>): void {
  start()
    .then((participant) => {
      process.on('message', (message: { type: string; gc?: boolean }) => {
        if (message.type === 'usage') {
          // With --expose-gc, a collection first tells retained memory from garbage not yet collected.
          const gc = (globalThis as { gc?: () => void }).gc;
          if (message.gc && gc) gc();
          const cpu = process.cpuUsage();
          const memory = process.memoryUsage();
          process.send?.({ type: 'usage', cpuMicros: cpu.user + cpu.system, rss: memory.rss, heapUsed: memory.heapUsed, ...participant.extra?.() });
        } else if (message.type === 'stop') {
          void participant.close().finally(() => process.exit(0));
        }
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
