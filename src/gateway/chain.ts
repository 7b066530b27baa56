import type { OutgoingHttpHeaders } from 'node:http';
import { GatewayException } from '../common/errors/gateway.exception';
import type { GatewayContext } from './context';
import { type AccessStep, HANDLED, type ResponseStep, type StepOutcome } from './plugin';

/** Answers a refusal (or an unexpected error) on the context's response. */
export type RefusalWriter = (ctx: GatewayContext, error: unknown) => void;

/** The route's last step: the proxy (or a WebSocket pipe). It answers, or fails with an error. */
export type Terminal = (ctx: GatewayContext) => void | Promise<void>;

/** Per-step CPU accounting, only when the chain is compiled with timing on (the benchmark). */
export interface StepTimings {
  readonly names: readonly string[];
  /** Nanoseconds spent in each access step's synchronous part, summed over requests. */
  readonly nanos: Float64Array;
  /** Requests that reached each step. */
  readonly calls: Float64Array;
}

export interface ChainOptions {
  timed?: boolean;
}

/**
 * One route's compiled chain (Kong's plugins iterator): the access steps in priority order, the
 * response steps, and the terminal. `run` is a plain loop: a step that decides synchronously
 * costs a function call, and only a step that returns a promise (a lookup, the Redis call) makes
 * the rest of the chain continue in its callback. Nothing here allocates per step.
 */
export class Chain {
  readonly timings: StepTimings | undefined;
  /** Some step sees response headers (CORS, header rules): answers written by a step then go through `respond`. */
  readonly hasResponseSteps: boolean;

  constructor(
    private readonly access: readonly AccessStep[],
    readonly stepNames: readonly string[],
    private readonly responseSteps: readonly ResponseStep[],
    private readonly terminal: Terminal,
    private readonly refuse: RefusalWriter,
    options: ChainOptions = {},
  ) {
    this.hasResponseSteps = responseSteps.length > 0;
    this.timings = options.timed
      ? { names: stepNames, nanos: new Float64Array(access.length + 1), calls: new Float64Array(access.length + 1) }
      : undefined;
  }

  /** Runs the access steps then the terminal; never throws, every failure is answered. */
  run(ctx: GatewayContext): void {
    this.from(ctx, 0);
  }

  /** Applies the response steps to headers about to be written (proxied or cached answers). */
  respond(ctx: GatewayContext, status: number, headers: OutgoingHttpHeaders): void {
    const steps = this.responseSteps;
    for (let i = 0; i < steps.length; i++) steps[i](ctx, status, headers);
  }

  /**
   * The terminal alone, for a step that makes the upstream request itself (the cache leads a
   * fetch its waiters share); its failure is the caller's to answer.
   */
  forward(ctx: GatewayContext): void | Promise<void> {
    return this.terminal(ctx);
  }

  /** The access steps only, for a WebSocket upgrade; resolves to the refusal or undefined. */
  admit(ctx: GatewayContext): Promise<GatewayException | undefined> {
    return new Promise((resolve) => this.admitFrom(ctx, 0, resolve));
  }

  private from(ctx: GatewayContext, start: number): void {
    const steps = this.access;
    for (let i = start; i < steps.length; i++) {
      let outcome: StepOutcome | Promise<StepOutcome>;
      try {
        outcome = this.timings ? this.timed(i, ctx) : steps[i](ctx);
      } catch (error) {
        this.refuse(ctx, error);
        return;
      }
      if (outcome === undefined) continue;
      if (outcome instanceof Promise) {
        outcome.then(
          (settled) => {
            if (settled === undefined) this.from(ctx, i + 1);
            else this.stop(ctx, settled);
          },
          (error: unknown) => this.refuse(ctx, error),
        );
        return;
      }
      this.stop(ctx, outcome);
      return;
    }
    this.finish(ctx);
  }

  private admitFrom(ctx: GatewayContext, start: number, done: (refusal: GatewayException | undefined) => void): void {
    const steps = this.access;
    for (let i = start; i < steps.length; i++) {
      let outcome: StepOutcome | Promise<StepOutcome>;
      try {
        outcome = steps[i](ctx);
      } catch (error) {
        done(asRefusal(error));
        return;
      }
      if (outcome === undefined) continue;
      if (outcome instanceof Promise) {
        outcome.then(
          (settled) => (settled === undefined ? this.admitFrom(ctx, i + 1, done) : done(settled === HANDLED ? undefined : settled)),
          (error: unknown) => done(asRefusal(error)),
        );
        return;
      }
      done(outcome === HANDLED ? undefined : outcome);
      return;
    }
    done(undefined);
  }

  private stop(ctx: GatewayContext, outcome: GatewayException | typeof HANDLED): void {
    if (outcome !== HANDLED) this.refuse(ctx, outcome);
  }

  private finish(ctx: GatewayContext): void {
    let done: void | Promise<void>;
    const started = this.timings ? process.hrtime.bigint() : 0n;
    try {
      done = this.terminal(ctx);
    } catch (error) {
      this.refuse(ctx, error);
      return;
    }
    if (this.timings) this.account(this.access.length, started);
    if (done instanceof Promise) done.catch((error: unknown) => this.refuse(ctx, error));
  }

  private timed(i: number, ctx: GatewayContext): StepOutcome | Promise<StepOutcome> {
    const started = process.hrtime.bigint();
    try {
      return this.access[i](ctx);
    } finally {
      this.account(i, started);
    }
  }

  private account(i: number, started: bigint): void {
    const timings = this.timings!;
    timings.nanos[i] += Number(process.hrtime.bigint() - started);
    timings.calls[i]++;
  }
}

function asRefusal(error: unknown): GatewayException {
  return error instanceof GatewayException ? error : new GatewayException('internal_error');
}
