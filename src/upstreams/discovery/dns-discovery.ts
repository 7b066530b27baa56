import { Resolver } from 'node:dns/promises';
import { Logger } from '@nestjs/common';
import { type DiscoveryConfig, parseResolverList } from '../../config/discovery.config';
import {
  type DiscoveredTarget,
  makeTarget,
  normaliseTargets,
  priorityGroups,
  sameTargets,
  srvWeight,
  type SrvAnswer,
} from './discovered-targets';

/**
 * What one refresh did: `changed` (the callback ran), `unchanged`, `partial` (some lookups failed;
 * their last good addresses were used), `failed` (nothing answered; the set is kept), `empty`
 * (an empty answer; the set is kept or cleared per `onEmpty`).
 */
export type DiscoveryOutcome = 'changed' | 'unchanged' | 'partial' | 'failed' | 'empty';

export interface DnsDiscoveryOptions {
  /** The upstream's name: the first part of every target id. */
  upstream: string;
  config: DiscoveryConfig;
  /** Called with the full new set, only when it differs from the last one. */
  onChange: (targets: readonly DiscoveredTarget[]) => void;
  /** Called after every refresh (metrics: refreshes by outcome). */
  onRefresh?: (outcome: DiscoveryOutcome) => void;
  logger?: Pick<Logger, 'warn' | 'log'>;
  now?: () => number;
}

export interface DiscoveryStats {
  refreshes: number;
  /** Refreshes where no lookup answered, or some failed (`failed` + `partial`). */
  failures: number;
  emptyAnswers: number;
  changes: number;
  targets: number;
  lastSuccessAt?: number;
  lastError?: string;
}

type Lookup = { kind: 'ok'; values: string[] } | { kind: 'empty' } | { kind: 'failed'; error: Error };

/** NXDOMAIN and NODATA: the name answered, with nothing. Every other error is a failure. */
const EMPTY_CODES = new Set(['ENOTFOUND', 'ENODATA']);
const LOG_INTERVAL_MS = 60_000;

/**
 * Discovers an upstream's backends in DNS (docs/routes.md "DNS discovery"), every
 * `intervalSeconds`: `dns` takes every A and AAAA address of a name (on `port`); `srv` takes the
 * SRV records of the lowest priority that resolves to at least one address, with their ports and
 * weights. Ids are `<upstream>-<address>-<port>`, so a backend that stays keeps its health.
 *
 * Failure policy: a lookup that fails (timeout, SERVFAIL, refused) keeps the addresses it gave
 * last time, per name and family, so a refresh where AAAA times out still follows A; when nothing
 * answers, the set is kept. An empty answer (NXDOMAIN or no records) is not a failure but is, by
 * default, not believed either: the set is kept (`onEmpty: keep`) unless configured to `clear`.
 * Failures and kept empty answers are logged at most once a minute, recovery once.
 */
export class DnsDiscovery {
  private readonly resolver: Resolver;
  private readonly logger: Pick<Logger, 'warn' | 'log'>;
  private readonly now: () => number;
  private current: readonly DiscoveredTarget[] = [];
  /** Last good addresses per `<family>:<name>`. */
  private lastGood = new Map<string, string[]>();
  private inFlight?: Promise<DiscoveryOutcome>;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private troubleSince?: number;
  private lastTroubleLogAt = Number.NEGATIVE_INFINITY;
  private readonly counters: Omit<DiscoveryStats, 'targets'> = { refreshes: 0, failures: 0, emptyAnswers: 0, changes: 0 };

  constructor(private readonly options: DnsDiscoveryOptions) {
    const { config } = options;
    this.resolver = new Resolver({ timeout: config.timeoutMs, tries: 2 });
    if (config.resolver) {
      const parsed = parseResolverList(config.resolver);
      if ('problem' in parsed) throw new Error(`discovery.resolver ${parsed.problem}`);
      this.resolver.setServers(parsed.servers);
    }
    this.logger = options.logger ?? new Logger(`DnsDiscovery ${options.upstream}`);
    this.now = options.now ?? Date.now;
  }

  /** The set in use (sorted by id). */
  get targets(): readonly DiscoveredTarget[] {
    return this.current;
  }

  /** Resolves once (awaited, so the pool starts populated when DNS answers), then on the timer. */
  async start(): Promise<readonly DiscoveredTarget[]> {
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh(), this.options.config.intervalSeconds * 1000);
      this.timer.unref();
    }
    await this.refresh();
    return this.current;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.resolver.cancel();
  }

  /** One refresh now (SIGHUP, tests); joins a refresh in flight rather than overlapping it. Never rejects. */
  refresh(): Promise<DiscoveryOutcome> {
    this.inFlight ??= this.resolveAll()
      .catch((error: Error): DiscoveryOutcome => {
        this.trouble(`discovery failed: ${error.message}`);
        this.counters.failures++;
        return 'failed';
      })
      .then((outcome) => {
        this.counters.refreshes++;
        this.options.onRefresh?.(outcome);
        return outcome;
      })
      .finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  stats(): DiscoveryStats {
    return { ...this.counters, targets: this.current.length };
  }

  private async resolveAll(): Promise<DiscoveryOutcome> {
    const { config, upstream } = this.options;
    const lastGood = new Map<string, string[]>();
    const problems: string[] = [];
    let found: DiscoveredTarget[];
    let answered: boolean;

    if (config.dns !== undefined) {
      const result = await this.addressesOf(config.dns, lastGood, problems);
      answered = result.answered;
      found = result.addresses.map((address) => makeTarget(upstream, config.scheme, address, config.port as number, 1));
    } else {
      const srv = await this.lookup('SRV', config.srv as string);
      if (srv.kind === 'failed') {
        this.counters.failures++;
        this.trouble(`SRV ${config.srv}: ${srv.error.message}; keeping ${this.current.length} backends`);
        return 'failed';
      }
      const groups = srv.kind === 'ok' ? priorityGroups(srv.records) : [];
      // With targets to look up, the answer counts only if one of their lookups answered.
      answered = groups.length === 0;
      found = [];
      for (const group of groups) {
        const perTarget = await Promise.all(group.map((record) => this.addressesOf(record.name, lastGood, problems)));
        answered ||= perTarget.some((result) => result.answered);
        found = group.flatMap((record, i) =>
          perTarget[i].addresses.map((address) => makeTarget(upstream, config.scheme, address, record.port, srvWeight(record.weight), record.name)),
        );
        // The most preferred group that resolves is the whole set; the others wait for it to vanish.
        if (found.length > 0) break;
      }
    }
    if (this.stopped) return 'unchanged';
    // Names not looked up this time (an SRV target that left) are forgotten.
    this.lastGood = lastGood;

    if (!answered) {
      this.counters.failures++;
      this.trouble(`${problems.join('; ')}; keeping ${this.current.length} backends`);
      return 'failed';
    }
    if (found.length === 0) return this.emptyAnswer(problems);

    const next = normaliseTargets(found);
    const partial = problems.length > 0;
    if (partial) {
      this.counters.failures++;
      this.trouble(`${problems.join('; ')}; using the last good addresses for those`);
    } else {
      this.recovered();
    }
    this.counters.lastSuccessAt = this.now();
    if (sameTargets(next, this.current)) return partial ? 'partial' : 'unchanged';
    this.apply(next);
    return partial ? 'partial' : 'changed';
  }

  /**
   * A and AAAA of one name. A failed family contributes its last good addresses; `answered` is
   * false only when both families failed.
   */
  private async addressesOf(name: string, lastGood: Map<string, string[]>, problems: string[]): Promise<{ addresses: string[]; answered: boolean }> {
    const families = await Promise.all((['A', 'AAAA'] as const).map((type) => this.lookup(type, name)));
    const addresses: string[] = [];
    let answered = false;
    families.forEach((result, i) => {
      const key = `${i === 0 ? 4 : 6}:${name}`;
      if (result.kind === 'failed') {
        problems.push(`${i === 0 ? 'A' : 'AAAA'} ${name}: ${result.error.message}`);
        const kept = this.lastGood.get(key);
        if (kept) {
          lastGood.set(key, kept);
          addresses.push(...kept);
        }
        return;
      }
      answered = true;
      const values = result.kind === 'ok' ? result.values : [];
      lastGood.set(key, values);
      addresses.push(...values);
    });
    return { addresses, answered };
  }

  private lookup(type: 'A' | 'AAAA', name: string): Promise<Lookup>;
  private lookup(type: 'SRV', name: string): Promise<{ kind: 'ok'; records: SrvAnswer[] } | { kind: 'empty' } | { kind: 'failed'; error: Error }>;
  private async lookup(type: 'A' | 'AAAA' | 'SRV', name: string): Promise<unknown> {
    try {
      if (type === 'SRV') {
        const records = await this.resolver.resolveSrv(name);
        return records.length ? { kind: 'ok', records } : { kind: 'empty' };
      }
      const values = type === 'A' ? await this.resolver.resolve4(name) : await this.resolver.resolve6(name);
      return values.length ? { kind: 'ok', values } : { kind: 'empty' };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code && EMPTY_CODES.has(code)) return { kind: 'empty' };
      return { kind: 'failed', error: new Error(code ?? (error as Error).message) };
    }
  }

  private emptyAnswer(problems: string[]): DiscoveryOutcome {
    this.counters.emptyAnswers++;
    const name = this.options.config.dns ?? this.options.config.srv;
    const detail = problems.length ? ` (${problems.join('; ')})` : '';
    if (this.options.config.onEmpty === 'clear' || this.current.length === 0) {
      if (this.current.length > 0) {
        this.logger.warn(`${name} answered with no address${detail}; the upstream has no backend now`);
        this.apply([]);
      }
      return 'empty';
    }
    this.trouble(`${name} answered with no address${detail}; keeping the last ${this.current.length} backends`);
    return 'empty';
  }

  private apply(next: readonly DiscoveredTarget[]): void {
    this.current = Object.freeze(next);
    this.counters.changes++;
    this.options.onChange(this.current);
  }

  private trouble(message: string): void {
    if (this.stopped) return;
    this.counters.lastError = message;
    this.troubleSince ??= this.now();
    if (this.now() - this.lastTroubleLogAt < LOG_INTERVAL_MS) return;
    this.lastTroubleLogAt = this.now();
    this.logger.warn(message);
  }

  private recovered(): void {
    if (this.troubleSince === undefined) return;
    this.logger.log(`DNS answers again after ${Math.round((this.now() - this.troubleSince) / 1000)} s`);
    this.troubleSince = undefined;
    this.lastTroubleLogAt = Number.NEGATIVE_INFINITY;
  }
}
