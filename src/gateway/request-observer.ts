import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RawWithState, RequestState } from './context';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { SECTION, type SectionTimings, outsideChain } from './step-timings';

/** nginx's "client closed request": the status recorded when the client went away first. */
export const CLIENT_CLOSED_STATUS = 499;
/** Route label of requests no route matched (404s, probes of random paths). */
export const UNMATCHED_ROUTE = 'unmatched';

const ROUTE_TEMPLATE = Symbol('gw.routeTemplate');
type RawWithTemplate = RawWithState & { [ROUTE_TEMPLATE]?: string };

/** What a listener learns about a request once its response has finished or been aborted. */
export interface FinishedRequest {
  request: FastifyRequest;
  state: RequestState;
  /** Route template (`/admin/v1/tenants/:id`, `/i/*`) or `unmatched`; never the raw path. */
  routeTemplate: string;
  /** The status sent, or 499 when the client closed the connection before the response ended. */
  status: number;
  aborted: boolean;
  durationSeconds: number;
}

/** Tracing, request logs and the request line hook in here instead of adding listeners of their own. */
export interface RequestLifecycleListener {
  requestStarted?(request: FastifyRequest): void;
  requestFinished?(finished: FinishedRequest): void;
}

/**
 * Observes every request from its first hook to the moment its response ends, however it
 * ends: the raw response's 'close' fires after a normal finish, after a client abort and for
 * hijacked replies (the streaming proxy), where Fastify's onResponse would not run for the
 * last two. One closure per request; everything heavier (log rows, spans) is done by
 * listeners that only touch memory.
 */
@Injectable()
export class RequestObserver implements OnModuleInit {
  private readonly listeners: RequestLifecycleListener[] = [];
  private readonly logger = new Logger('RequestObserver');
  /** Only with GATEWAY_STEP_TIMINGS=1 (the benchmark): the response-end sections, then one per listener. */
  private readonly timings: SectionTimings | undefined = outsideChain;
  private readonly sections = this.timings ? { endHooks: this.timings.section(SECTION.endHooks), metrics: this.timings.section(SECTION.metrics), listeners: [] as number[] } : undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly metrics: GatewayMetrics,
  ) {}

  subscribe(listener: RequestLifecycleListener): void {
    this.listeners.push(listener);
    this.sections?.listeners.push(this.timings!.section(`response end: ${LISTENER_SECTIONS[listener.constructor.name] ?? listener.constructor.name}`));
  }

  onModuleInit(): void {
    // Module init runs before Fastify boots, so the hook still applies to every route.
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onRequest', (request, reply, done) => {
      this.started(request, reply);
      done();
    });
  }

  private started(request: FastifyRequest, reply: FastifyReply): void {
    this.metrics.requestStarted();
    (request.raw as RawWithTemplate)[ROUTE_TEMPLATE] = request.routeOptions.url ?? UNMATCHED_ROUTE;
    for (const listener of this.listeners) {
      try {
        listener.requestStarted?.(request);
      } catch (error) {
        this.listenerFailed(error, request.gw);
      }
    }
    reply.raw.once('close', () => this.finished(request, reply));
  }

  private finished(request: FastifyRequest, reply: FastifyReply): void {
    const timings = this.timings;
    let mark = timings ? process.hrtime.bigint() : 0n;
    this.metrics.requestEnded();
    const state = request.gw;
    const aborted = !reply.raw.writableFinished;
    // The request's own end-of-response work first (usage, upstream release), then observers.
    state.runEndHooks(aborted, (error) => this.listenerFailed(error, state));
    if (timings) mark = timings.lap(this.sections!.endHooks, mark);
    const status = aborted ? CLIENT_CLOSED_STATUS : reply.raw.statusCode;
    const routeTemplate = state.routeTemplate ?? routeTemplateOf(request.raw as RawWithState);
    const durationSeconds = Number(process.hrtime.bigint() - state.startedAt) / 1e9;
    this.metrics.requestObserved(routeTemplate, request.method, status, durationSeconds, state.auth?.tenantId);
    if (state.bytesIn) this.metrics.bytes('in', state.bytesIn);
    if (state.bytesOut) this.metrics.bytes('out', state.bytesOut);
    if (timings) mark = timings.lap(this.sections!.metrics, mark);
    if (this.listeners.length === 0) return;
    const finished: FinishedRequest = { request, state, routeTemplate, status, aborted, durationSeconds };
    for (let i = 0; i < this.listeners.length; i++) {
      try {
        this.listeners[i].requestFinished?.(finished);
      } catch (error) {
        this.listenerFailed(error, state);
      }
      if (timings) mark = timings.lap(this.sections!.listeners[i], mark);
    }
  }

  // An event handler that throws would crash the process: observability must never do that.
  private listenerFailed(error: unknown, state: RequestState): void {
    this.logger.error({ requestId: state.requestId, traceId: state.traceId, err: error }, 'request observer listener failed');
  }
}

/** Budget-table names of the observers (docs/performance.md). */
const LISTENER_SECTIONS: Record<string, string> = {
  RequestLineLogger: 'log line',
  RequestLogService: 'request-log queue',
  TracingService: 'tracing',
};

/** The route template recorded when the request started (logging sees only the raw request). */
export function routeTemplateOf(raw: RawWithState): string {
  return (raw as RawWithTemplate)[ROUTE_TEMPLATE] ?? UNMATCHED_ROUTE;
}
