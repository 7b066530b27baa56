import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { RouteTable } from './route-table';

/**
 * Per-step CPU accounting for the benchmark (docs/performance.md, budget per step). The compiled
 * chains time their own steps (chain.ts); this file times the request's work outside them: the
 * entry (Fastify's routing and hooks up to the chain), the context the first hook builds, and
 * what runs when the response ends (end hooks, metrics, each observer: log line, request-log
 * queue, tracing). Off unless GATEWAY_STEP_TIMINGS=1, which the benchmark sets on its gateway
 * processes; when off nothing is installed and each timed place costs one `undefined` check.
 * Each figure is the wall time of a synchronous section, which is CPU time as nothing waits in it.
 */
export const STEP_TIMINGS_ENV = 'GATEWAY_STEP_TIMINGS';

export function stepTimingsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[STEP_TIMINGS_ENV] === '1';
}

/** Well-known sections outside the chain, in the order a request meets them. */
export const SECTION = {
  entry: 'entry: routing, hooks, handler',
  context: 'context (first hook)',
  endHooks: 'response end: end hooks',
  metrics: 'response end: metrics',
} as const;

export interface SectionFigures {
  readonly nanos: number;
  readonly calls: number;
}

/** Nanoseconds and calls per named section; sections are created once, then addressed by index. */
export class SectionTimings {
  private readonly names: string[] = [];
  private readonly nanos: number[] = [];
  private readonly calls: number[] = [];
  /** Every nanosecond added to any section, so an enclosing measurement can leave nested ones out. */
  total = 0;

  section(name: string): number {
    const existing = this.names.indexOf(name);
    if (existing !== -1) return existing;
    this.names.push(name);
    this.nanos.push(0);
    this.calls.push(0);
    return this.names.length - 1;
  }

  add(index: number, nanos: number): void {
    this.nanos[index] += nanos;
    this.calls[index]++;
    this.total += nanos;
  }

  /** Adds the time since `started` (process.hrtime.bigint()) and returns now, for the next section. */
  lap(index: number, started: bigint): bigint {
    const now = process.hrtime.bigint();
    this.add(index, Number(now - started));
    return now;
  }

  snapshot(): Record<string, SectionFigures> {
    const out: Record<string, SectionFigures> = {};
    this.names.forEach((name, i) => (out[name] = { nanos: this.nanos[i], calls: this.calls[i] }));
    return out;
  }
}

/** The process's sections outside the chain; undefined (nothing timed) unless the switch is on. */
export const outsideChain: SectionTimings | undefined = stepTimingsEnabled() ? new SectionTimings() : undefined;

/** Nanoseconds every chain of the table has accounted so far (chains compiled with timings). */
export function chainNanos(table: RouteTable): number {
  let sum = 0;
  for (const route of table.routes) {
    const timings = route.chain.timings;
    if (!timings) continue;
    for (let i = 0; i < timings.nanos.length; i++) sum += timings.nanos[i];
  }
  return sum;
}

/**
 * Times the synchronous part of the HTTP server's request event (Fastify's routing, its hooks,
 * the handler) and books it as the entry section, leaving out what the chain steps and nested
 * sections (the first hook) accounted meanwhile.
 */
export function timeRequestEntry(server: Server, timings: SectionTimings, chainTotal: () => number): void {
  const entry = timings.section(SECTION.entry);
  const listeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chainBefore = chainTotal();
    const nestedBefore = timings.total;
    const started = process.hrtime.bigint();
    for (const listener of listeners) listener.call(server, req, res);
    const elapsed = Number(process.hrtime.bigint() - started);
    timings.add(entry, elapsed - (chainTotal() - chainBefore) - (timings.total - nestedBefore));
  });
}
