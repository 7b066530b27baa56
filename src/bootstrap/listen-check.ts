import { createServer } from 'node:net';

/** Errors of `listen` an operator fixes by choosing another address, each said in a few words. */
export const LISTEN_ERRORS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not one of this machine',
};

/**
 * Binds and releases host:port once, before the embedded database and the development worker
 * start, so a port already taken fails the start in milliseconds rather than after them.
 * Resolves with the error code an operator can act on (see LISTEN_ERRORS), or undefined.
 */
export function listenProblem(port: number, host: string): Promise<string | undefined> {
  if (port === 0) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code && error.code in LISTEN_ERRORS) resolve(error.code);
      else reject(error);
    });
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

export function describeListenProblem(code: string, host: string, port: number): string {
  return `cannot listen on ${host}:${port}: ${LISTEN_ERRORS[code] ?? code} (${code}); stop the other process or choose another PORT / HOST`;
}
