import type { Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry, register as defaultRegistry } from 'prom-client';

/**
 * One scrape of /metrics sees the whole instance when it runs several workers (WORKERS > 1,
 * docs/observability.md): the worker that receives the scrape asks the primary over IPC, the
 * primary asks every worker that is listening for its registry as JSON, merges them with
 * prom-client's AggregatorRegistry (counters and histograms summed; gauges by their declared
 * aggregator) together with its own few metrics, and sends the text back to that worker.
 */

/** Worker → primary: "the merged metrics, please"; primary → worker: the text (or why not). */
const MERGED = 'igw:metrics-merged';
/** Primary → worker: "your registry as JSON"; worker → primary: the JSON. */
const LOCAL = 'igw:metrics-local';

interface MergedRequest {
  type: typeof MERGED;
  id: number;
}
interface MergedAnswer extends MergedRequest {
  text?: string;
  error?: string;
}
interface LocalRequest {
  type: typeof LOCAL;
  id: number;
}
interface LocalAnswer extends LocalRequest {
  metrics?: unknown[];
}

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

// ── worker side ────────────────────────────────────────────────────────────────────────────

let served = false;

/** In a worker: answers the primary's requests for this process's metrics. Idempotent. */
export function serveWorkerMetrics(registry: Registry = defaultRegistry): void {
  if (served) return;
  served = true;
  process.on('message', (message: unknown) => {
    if (!isMessage<LocalRequest>(message, LOCAL)) return;
    registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: LOCAL, id: message.id, metrics } satisfies LocalAnswer),
      () => process.send?.({ type: LOCAL, id: message.id, metrics: [] } satisfies LocalAnswer),
    );
  });
}

let nextRequest = 0;

/** In a worker: the instance's metrics as the primary merged them (Prometheus text). */
export function mergedMetrics(timeoutMs = 5_000): Promise<string> {
  const id = ++nextRequest;
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => {
      if (!isMessage<MergedAnswer>(message, MERGED) || message.id !== id) return;
      done();
      if (message.text !== undefined) resolve(message.text);
      else reject(new Error(message.error ?? 'the primary sent no metrics'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the primary did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    process.on('message', onMessage);
    if (!process.send) {
      done();
      reject(new Error('this process has no primary to ask'));
      return;
    }
    process.send({ type: MERGED, id } satisfies MergedRequest);
  });
}

// ── primary side ───────────────────────────────────────────────────────────────────────────

/**
 * In the primary: its own metrics (how many workers listen, how often one was restarted) and the
 * merge. A worker that does not answer in time (starting, stuck) is left out of that scrape
 * rather than failing it; `gateway_cluster_workers` says how many were expected.
 */
export class ClusterMetrics {
  private readonly registry = new Registry();
  private readonly workersGauge: Gauge;
  private readonly restarts: Counter;
  private readonly pending = new Map<number, { answers: unknown[][]; left: number; finish: () => void }>();
  private nextId = 0;

  constructor(private readonly timeoutMs = 2_000) {
    this.workersGauge = new Gauge({ name: 'gateway_cluster_workers', help: 'Worker processes listening (WORKERS).', registers: [this.registry] });
    this.restarts = new Counter({ name: 'gateway_cluster_worker_restarts_total', help: 'Workers started again after they exited unexpectedly.', registers: [this.registry] });
  }

  workersListening(n: number): void {
    this.workersGauge.set(n);
  }

  workerRestarted(): void {
    this.restarts.inc();
  }

  /** Handles a worker's message; true when it was one of the metrics protocol. */
  onMessage(worker: Worker, message: unknown, listening: () => readonly Worker[]): boolean {
    if (isMessage<MergedRequest>(message, MERGED)) {
      this.merge(listening()).then(
        (text) => sendIfConnected(worker, { type: MERGED, id: message.id, text } satisfies MergedAnswer),
        (error: Error) => sendIfConnected(worker, { type: MERGED, id: message.id, error: error.message } satisfies MergedAnswer),
      );
      return true;
    }
    if (isMessage<LocalAnswer>(message, LOCAL)) {
      const request = this.pending.get(message.id);
      if (request) {
        request.answers.push(message.metrics ?? []);
        if (--request.left === 0) request.finish();
      }
      return true;
    }
    return false;
  }

  /** Every listening worker's registry and the primary's own, merged into one exposition. */
  async merge(workers: readonly Worker[]): Promise<string> {
    const id = ++this.nextId;
    const answers: unknown[][] = [];
    const asked = workers.filter((worker) => worker.isConnected());
    if (asked.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, this.timeoutMs);
        function finish() {
          clearTimeout(timer);
          resolve();
        }
        this.pending.set(id, { answers, left: asked.length, finish });
        for (const worker of asked) sendIfConnected(worker, { type: LOCAL, id } satisfies LocalRequest);
      });
      this.pending.delete(id);
    }
    answers.push(await this.registry.getMetricsAsJSON());
    return AggregatorRegistry.aggregate(answers).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function sendIfConnected(worker: Worker, message: object): void {
  if (worker.isConnected()) worker.send(message);
}
