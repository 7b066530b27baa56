/**
 * The IPC side of one benchmark participant running in its own process, so its CPU time and
 * RSS are its own. Talks to the runner:
 *   → { type: 'ready', url }       once listening
 *   ← { type: 'usage' }            → { type: 'usage', cpuMicros, rss }
 *   ← { type: 'stop' }             closes and exits
 */
export function serveParticipant(name: string, start: () => Promise<{ url: string; close: () => Promise<unknown> }>): void {
  start()
    .then((participant) => {
      process.on('message', (message: { type: string }) => {
        if (message.type === 'usage') {
          const cpu = process.cpuUsage();
          process.send?.({ type: 'usage', cpuMicros: cpu.user + cpu.system, rss: process.memoryUsage.rss() });
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
