import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** One target's figures (medians over the rounds; RSS peak is the highest sample). */
export interface TargetSummary {
  unavailable?: string;
  requestsPerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
  cpuMicrosPerRequest?: number;
  rssPeakMiB?: number;
  rssAtRestMiB?: number;
  /** Processes counted (a primary and its workers). */
  processes?: number;
  errors?: number;
  redis?: {
    /** Under load, INFO commandstats (commands inside scripts included). */
    commandsPerRequest?: number;
    /** Under load, INFO cpu of the Redis server. */
    cpuMicrosPerRequest?: number;
    /** Under load, socket writes on the command connection (automatic pipelining merges requests'). */
    socketWritesPerRequest?: number;
    /** One request at a time: the request's own round trips. */
    roundTripsPerRequest?: number;
  };
  ratios?: { requestsPerSecond: number; cpuMicrosPerRequest: number; p99DeltaMs: number };
}

export interface StepFigure {
  step: string;
  microsPerRequest: number;
  budgetMicros?: number;
}

export interface BenchResult {
  at: string;
  durationSeconds: number;
  options: { rounds: number; duration: number; warmup: number; connections: number };
  environment: Record<string, unknown>;
  summary: Record<string, TargetSummary>;
  /** Per target with step timings: µs per request per step, in request order. */
  steps: Record<string, StepFigure[]>;
  redisProbes: Record<string, unknown>;
  notes: string[];
  [other: string]: unknown;
}

/** Key of a chain step's counters in a usage answer (gateway-child.ts). */
export function chainKey(route: string, step: string): string {
  return `chain:${route}:${step}`;
}

/** What the unaccounted rest of the CPU per request is made of. */
export const UNATTRIBUTED = 'rest: Node HTTP in/out, streams, undici, Redis client, GC';
export const TOTAL = 'total (CPU µs per request)';

/**
 * The CPU budget per step of the full pipeline on `/i/*` (docs/performance.md), as shares of the
 * yardstick's CPU per request, so the budget follows the machine the run is on: the shares add up
 * to 1.8, within the 2× target, with 0.2 left unallocated. The rest (Node's HTTP parser and writes,
 * streams, undici, the Redis client's I/O, promise continuations, GC) is most of what the
 * yardstick itself pays, plus the Redis client and the allocations of the steps.
 */
export const BUDGET_SHARES: Record<string, number> = {
  'entry: routing, hooks, handler': 0.06,
  'context (first hook)': 0.03,
  'key-auth': 0.04,
  'ip-restriction': 0.01,
  'rate-limiting': 0.06,
  quota: 0.02,
  'imgproxy-rewrite': 0.06,
  proxy: 0.1,
  'response end: end hooks': 0.04,
  'response end: metrics': 0.03,
  'response end: log line': 0.02,
  'response end: request-log queue': 0.02,
  'response end: tracing': 0.01,
  [UNATTRIBUTED]: 1.3,
};
export const BUDGET_TOTAL_SHARE = Math.round(Object.values(BUDGET_SHARES).reduce((a, b) => a + b, 0) * 100) / 100;

function shareOf(step: string): string {
  if (step === TOTAL) return String(BUDGET_TOTAL_SHARE);
  return BUDGET_SHARES[step] === undefined ? '-' : String(BUDGET_SHARES[step]);
}

const OUTSIDE_BEFORE = ['entry: routing, hooks, handler', 'context (first hook)'];

/**
 * µs per request of each step for one target: the sections before the chain, the route's chain
 * steps in order, the response-end sections, then the rest of the measured CPU per request.
 */
export function stepBudget(totals: Record<string, number>, route: string, requests: number, cpuMicrosPerRequest: number, baselineMicros: number): StepFigure[] {
  const per = (nanos: number) => Math.round((nanos / 1000 / Math.max(1, requests)) * 10) / 10;
  const budget = (step: string) => (BUDGET_SHARES[step] === undefined ? undefined : Math.round(BUDGET_SHARES[step] * baselineMicros * 10) / 10);
  const figures: StepFigure[] = [];
  const prefix = chainKey(route, '');
  const add = (step: string, nanos: number) => figures.push({ step, microsPerRequest: per(nanos), budgetMicros: budget(step) });
  for (const name of OUTSIDE_BEFORE) if (name in totals) add(name, totals[name]);
  for (const [key, nanos] of Object.entries(totals)) if (key.startsWith(prefix)) add(key.slice(prefix.length), nanos);
  for (const [key, nanos] of Object.entries(totals)) if (!key.startsWith('chain:') && !OUTSIDE_BEFORE.includes(key)) add(key, nanos);
  const accounted = figures.reduce((sum, f) => sum + f.microsPerRequest, 0);
  figures.push({ step: UNATTRIBUTED, microsPerRequest: Math.round((cpuMicrosPerRequest - accounted) * 10) / 10, budgetMicros: budget(UNATTRIBUTED) });
  figures.push({ step: TOTAL, microsPerRequest: cpuMicrosPerRequest, budgetMicros: Math.round(BUDGET_TOTAL_SHARE * baselineMicros) });
  return figures;
}

const COLUMNS = ['target', 'req/s', '× base', 'p50 ms', 'p99 ms', 'CPU µs/req', '× base', 'RSS peak MiB', 'RSS rest MiB', 'Redis cmd/req', 'Redis RTT/req', 'Redis writes/req', 'Redis CPU µs/req'];

function rows(result: BenchResult): string[][] {
  return Object.entries(result.summary).map(([name, s]) => {
    if (s.unavailable) return [name, 'not available', '', '', '', '', '', '', '', '', '', '', ''];
    const show = (v: number | undefined) => (v === undefined ? '-' : String(v));
    const label = s.processes && s.processes > 1 ? `${name} (${s.processes} processes)` : name;
    return [
      label,
      show(s.requestsPerSecond),
      name === 'baseline' ? '1' : show(s.ratios?.requestsPerSecond),
      show(s.p50Ms),
      show(s.p99Ms),
      show(s.cpuMicrosPerRequest),
      name === 'baseline' ? '1' : show(s.ratios?.cpuMicrosPerRequest),
      show(s.rssPeakMiB),
      show(s.rssAtRestMiB),
      show(s.redis?.commandsPerRequest),
      show(s.redis?.roundTripsPerRequest),
      show(s.redis?.socketWritesPerRequest),
      show(s.redis?.cpuMicrosPerRequest),
    ];
  });
}

/** The figures as a plain-text table, for the terminal. */
export function renderTable(result: BenchResult): string {
  const all = [COLUMNS, ...rows(result)];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const out = [line(COLUMNS), ...rows(result).map(line)];
  const gateway = result.steps.gateway;
  if (gateway) {
    out.push('', `µs per request per step (budget: share of the baseline's ${result.summary.baseline?.cpuMicrosPerRequest} µs, ${BUDGET_TOTAL_SHARE}× in all):`);
    const others = Object.keys(result.steps).filter((name) => name !== 'gateway');
    const header = ['step', 'share', 'budget', 'gateway', ...others];
    const stepRows = gateway.map((figure) => [
      figure.step,
      shareOf(figure.step),
      figure.budgetMicros === undefined ? '-' : String(figure.budgetMicros),
      String(figure.microsPerRequest),
      ...others.map((name) => String(result.steps[name].find((f) => f.step === figure.step)?.microsPerRequest ?? '-')),
    ]);
    const table = [header, ...stepRows];
    const w = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
    for (const r of table) out.push(r.map((cell, i) => (i === 0 ? cell.padEnd(w[i]) : cell.padStart(w[i]))).join('  '));
  }
  out.push(...result.notes.map((note) => `note: ${note}`));
  return out.join('\n');
}

function markdownTable(header: string[], body: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The figures table (with how the run was made) in Markdown. */
export function figuresMarkdown(result: BenchResult): string {
  const o = result.options;
  return [
    `Run of ${result.at.slice(0, 16).replace('T', ' ')} UTC, ${result.durationSeconds} s: ${o.rounds} rounds of ${o.duration} s per target, ` +
      `${o.connections} connections, ${String(result.environment.bodyBytes)}-byte body, Node ${String(result.environment.node)}; ` +
      `${String(result.environment.redis)}. Medians over the rounds; ratios to \`baseline\`.`,
    '',
    markdownTable(COLUMNS, rows(result)),
    ...(result.notes.length ? ['', ...result.notes.map((note) => `- ${note}`)] : []),
  ].join('\n');
}

/** The budget table: budget per step beside the measured µs per request of each gateway target. */
export function budgetMarkdown(result: BenchResult): string {
  const gateway = result.steps.gateway;
  if (!gateway) return '_The last run did not load the `gateway` target._';
  const others = Object.keys(result.steps).filter((name) => name !== 'gateway');
  const body = gateway.map((figure) => [
    figure.step === TOTAL || figure.step === UNATTRIBUTED ? `*${figure.step}*` : figure.step,
    shareOf(figure.step),
    figure.budgetMicros === undefined ? '-' : String(figure.budgetMicros),
    String(figure.microsPerRequest),
    ...others.map((name) => String(result.steps[name].find((f) => f.step === figure.step)?.microsPerRequest ?? '-')),
  ]);
  const baseline = result.summary.baseline?.cpuMicrosPerRequest;
  return [
    `µs of CPU per request, from the run of ${result.at.slice(0, 16).replace('T', ' ')} UTC. Budget = share × the baseline's CPU per request` +
      (baseline ? ` (${baseline} µs in this run; the shares add up to ${BUDGET_TOTAL_SHARE}×, the target is ≤ 2×)` : '') +
      '.',
    '',
    markdownTable(['step', 'share of baseline', 'budget µs', 'gateway', ...others], body),
  ].join('\n');
}

export function renderMarkdown(result: BenchResult): string {
  return ['# Latest benchmark', '', '`npm run bench` writes this file (bench/README.md).', '', figuresMarkdown(result), '', '## µs per request per step', '', budgetMarkdown(result), ''].join('\n');
}

const FIGURES = ['<!-- bench:figures:begin -->', '<!-- bench:figures:end -->'] as const;
const BUDGET = ['<!-- bench:budget:begin -->', '<!-- bench:budget:end -->'] as const;

/**
 * Replaces the generated parts of docs/performance.md (between its bench markers) with this run's
 * figures and budget table; the prose around them, and other sections, stay as written. Returns
 * whether the file was changed.
 */
export function updatePerformanceDoc(file: string, result: BenchResult): boolean {
  if (!existsSync(file)) return false;
  let text = readFileSync(file, 'utf8');
  for (const [[begin, end], content] of [
    [FIGURES, figuresMarkdown(result)],
    [BUDGET, budgetMarkdown(result)],
  ] as const) {
    const from = text.indexOf(begin);
    const to = text.indexOf(end);
    if (from === -1 || to < from) continue;
    text = `${text.slice(0, from + begin.length)}\n${content}\n${text.slice(to)}`;
  }
  writeFileSync(file, text);
  return true;
}
