import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/**
 * The development worker (main.ts beside this file) in a child process of its own, on a loopback
 * port the system picks. A child rather than the gateway's own event loop: sharp's decoding and
 * resizing (and its memory) stay out of the gateway process, so a large render never stalls
 * requests the gateway is answering, and the worker is reached over HTTP like real imgproxy.
 */

export interface WorkerProcessOptions {
  /** IMGPROXY_LOCAL_FILESYSTEM_ROOT; created when missing. */
  readonly root: string;
  readonly keyHex?: string;
  readonly saltHex?: string;
  readonly secret?: string;
  /** How long to wait for the worker to listen. */
  readonly startTimeoutMs?: number;
  /** Each line the worker writes to stderr (its errors). */
  readonly onStderr?: (line: string) => void;
  /** The worker ended without stop() being called. */
  readonly onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface WorkerProcess {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Environment the child may inherit: what Node, sharp and an on-the-fly TypeScript loader need, no secret of the gateway. */
const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'TMP', 'TEMP', 'LANG', 'LC_ALL', 'LD_LIBRARY_PATH', 'SWC_NODE_PROJECT', 'TS_NODE_PROJECT', 'SYSTEMROOT'];
const STOP_GRACE_MS = 5_000;

/** `main.js` when running from dist, `main.ts` when the gateway itself runs through a TypeScript loader. */
export function workerEntry(): string {
  return require.resolve('./main');
}

export async function startWorkerProcess(options: WorkerProcessOptions): Promise<WorkerProcess> {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
  Object.assign(env, {
    PORT: '0',
    HOST: '127.0.0.1',
    IMGPROXY_LOCAL_FILESYSTEM_ROOT: options.root,
    IMGPROXY_KEY: options.keyHex ?? '',
    IMGPROXY_SALT: options.saltHex ?? '',
    IMGPROXY_SECRET: options.secret ?? '',
  });
  const child: ChildProcess = fork(workerEntry(), [], {
    env,
    // An inspector flag would make the child fight the parent for the debugger port.
    execArgv: process.execArgv.filter((arg) => !arg.startsWith('--inspect')),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // Its own process group: a terminal's Ctrl-C reaches the gateway only, which drains the
    // requests the worker is still rendering before it stops the worker.
    detached: true,
  });

  const stderr: string[] = [];
  if (child.stderr) {
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (stderr.length < 20) stderr.push(line);
      options.onStderr?.(line);
    });
  }

  let stopping = false;
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker did not listen within ${options.startTimeoutMs ?? 15_000} ms`));
    }, options.startTimeoutMs ?? 15_000);
    child.on('message', (message: { type?: string; url?: string }) => {
      if (message?.type !== 'listening' || typeof message.url !== 'string') return;
      clearTimeout(timer);
      resolve(message.url);
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then(([code, signal]) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited before listening (${signal ?? `code ${code}`})${stderr.length ? `: ${stderr.join(' | ')}` : ''}`));
    });
  });

  void exited.then(([code, signal]) => {
    if (!stopping) options.onUnexpectedExit?.(code, signal);
  });

  return {
    url,
    pid: child.pid ?? 0,
    async stop() {
      if (stopping) return;
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const forced = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      forced.unref();
      child.kill('SIGTERM');
      await exited;
      clearTimeout(forced);
    },
  };
}
