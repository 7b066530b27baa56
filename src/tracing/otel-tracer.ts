// Loaded with import() only when tracing.otlpEndpoint is set: without an endpoint none of the
// OpenTelemetry packages is ever required, so the request path pays nothing for tracing.
import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type IdGenerator, RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import { UrlRedactor } from '../logging/url-redaction';
import type { FinishedRequest } from '../gateway/request-observer';
import { UNMATCHED_ROUTE } from '../gateway/request-observer';
import type { FastifyRequest } from 'fastify';

export interface OtelTracerOptions {
  endpoint: string;
  serviceName: string;
  serviceVersion?: string;
}

/**
 * Hands the SDK the ids the gateway already chose in its first hook (the trace id in the
 * logs, the span id sent upstream in `traceparent`), so the exported span, the log lines and
 * the backend's parent id all agree. Set synchronously right before startSpan.
 */
class PresetIdGenerator implements IdGenerator {
  preset?: { traceId: string; spanId: string };
  private readonly random = new RandomIdGenerator();

  generateTraceId(): string {
    return this.preset?.traceId ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    return this.preset?.spanId ?? this.random.generateSpanId();
  }
}

const SPAN = Symbol('gw.span');
/** Spans leave the process: a key in the path is masked there as in the logs. */
const PATHS = new UrlRedactor();
type RequestWithSpan = FastifyRequest & { [SPAN]?: Span };

/** One SERVER span per request, exported in batches over OTLP/HTTP (JSON). */
export class OtelTracer {
  private readonly ids = new PresetIdGenerator();
  private readonly provider: BasicTracerProvider;
  private readonly tracer;

  constructor(options: OtelTracerOptions) {
    const base = options.endpoint.replace(/\/+$/, '');
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.serviceVersion ?? '' }),
      idGenerator: this.ids,
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` }))],
    });
    this.tracer = this.provider.getTracer('imgproxy-gateway');
  }

  start(request: FastifyRequest): void {
    const state = request.gw;
    const ours = parseTraceparent(state.traceparent);
    if (!ours) return;
    // A valid incoming traceparent kept its trace id (request-id.ts): then it is our parent.
    const incoming = parseTraceparent(headerValue(request.headers.traceparent));
    const parent =
      incoming && incoming.traceId === ours.traceId
        ? trace.setSpanContext(ROOT_CONTEXT, { traceId: incoming.traceId, spanId: incoming.spanId, traceFlags: incoming.flags, isRemote: true })
        : ROOT_CONTEXT;
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    this.ids.preset = ours;
    try {
      (request as RequestWithSpan)[SPAN] = this.tracer.startSpan(
        `${request.method} ${route}`,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': request.method,
            'http.route': route,
            'url.path': PATHS.path(request.url.split('?', 1)[0]),
            'client.address': state.clientIp,
            'gateway.request_id': state.requestId,
          },
        },
        parent,
      );
    } finally {
      this.ids.preset = undefined;
    }
  }

  end({ request, state, status, aborted }: FinishedRequest): void {
    const span = (request as RequestWithSpan)[SPAN];
    if (!span) return;
    span.setAttribute('http.response.status_code', status);
    if (state.route) span.setAttribute('gateway.route', state.route);
    if (state.auth?.tenantId) span.setAttribute('gateway.tenant_id', state.auth.tenantId);
    if (state.backend) span.setAttribute('gateway.backend', state.backend);
    if (aborted) span.setAttribute('gateway.aborted', true);
    if (status >= 500 && !aborted) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }

  /** Exports what is still buffered; called at shutdown. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseTraceparent(value: string | undefined): { traceId: string; spanId: string; flags: number } | undefined {
  const parts = value?.trim().toLowerCase().split('-');
  if (!parts || parts.length < 4 || parts[1].length !== 32 || parts[2].length !== 16) return undefined;
  return { traceId: parts[1], spanId: parts[2], flags: parseInt(parts[3], 16) & 0xff };
}
