import { type FSWatcher, readFileSync, realpathSync, watch } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, sep } from 'node:path';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { refusals } from '../common/errors/refusals';
import { ConfigError, type ConfigSource } from '../config/config.loader';
import { CONFIG_SOURCE } from '../config/config.module';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics.service';
import { stepTimingsEnabled } from './step-timings';
import type { GatewayContext } from './context';
import { PluginRegistry } from './plugin-registry';
import { writeRefusal } from './refusal-writer';
import { UNMATCHED_ROUTE } from './request-observer';
import { type CompileOptions, compileRouteTable } from './routes.loader';
import type { RouteTable } from './route-table';


/** The parts of the configuration a reload applies; everything else needs a restart. */
const LIVE_KEYS = ['routes', 'upstreams', 'imageRoutes', 'auth'] as const;
type LiveKey = (typeof LIVE_KEYS)[number];

/** Told of a configuration a reload is about to serve, before its route table goes live. */
export type ReloadListener = (next: GatewayConfig) => void;

export type ReloadOutcome = { ok: true; version: number } | { ok: false; problems: string[] };

/**
 * Holds the live route table and serves every proxied request from it. The table is immutable
 * and replaced whole: a reload (the config file changed, SIGHUP, or the admin API) reads and
 * validates the configuration, compiles a new table off the request path and swaps the
 * reference; requests already running keep the route they matched. A configuration that does
 * not validate is refused with its problems logged, and the old table stays.
 */
@Injectable()
export class GatewayService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Routes');
  private table?: RouteTable;
  private version = 0;
  private readonly listeners: ReloadListener[] = [];
  private readonly watchers: FSWatcher[] = [];
  private debounce?: NodeJS.Timeout;
  private reloading?: Promise<ReloadOutcome>;
  private reloadAgain = false;
  private readonly onHangup = () => void this.reload('SIGHUP');
  /** Timed chains only with GATEWAY_STEP_TIMINGS=1 (the benchmark), see enableStepTimings. */
  private compileOptions: CompileOptions = { timed: stepTimingsEnabled() };
  /** What the files said at start (before the process filled in runtime values), to tell what a reload changed. */
  private loaded?: GatewayConfig;
  /** The files' bytes as the last load read them: a watch event reloads only when they differ. */
  private onDisk = new Map<string, string | undefined>();

  constructor(
    private readonly plugins: PluginRegistry,
    private readonly config: GatewayConfig,
    @Optional() @Inject(CONFIG_SOURCE) private readonly source: ConfigSource | null,
    @Optional() private readonly metrics?: GatewayMetrics,
  ) {}

  /** Every plugin has registered by now (their modules initialise first). */
  onApplicationBootstrap(): void {
    this.table = compileRouteTable(this.config, this.plugins, ++this.version, this.compileOptions);
    if (!this.source) return;
    this.onDisk = readFiles(this.source.files);
    try {
      this.loaded = this.source.load();
    } catch {
      this.loaded = undefined;
    }
    process.on('SIGHUP', this.onHangup);
    if (this.config.server.watchConfigFiles) this.watch(this.source.files);
  }

  onApplicationShutdown(): void {
    process.off('SIGHUP', this.onHangup);
    for (const watcher of this.watchers) watcher.close();
    clearTimeout(this.debounce);
  }

  /** Per-step CPU counters in every chain from now on (the benchmark). */
  enableStepTimings(): void {
    this.compileOptions = { timed: true };
    this.table = compileRouteTable(this.config, this.plugins, ++this.version, this.compileOptions);
  }

  /** The live table (for the admin API, the WebSocket entry and the benchmark). */
  current(): RouteTable {
    if (!this.table) throw new Error('the route table is built at application bootstrap');
    return this.table;
  }

  /**
   * The methods the application's own (Nest) routes serve at a path the route table does not know,
   * so a wrong method there is a 405 with Allow rather than a 404. Set by the HTTP entry.
   */
  nestMethodsAt: (url: string) => readonly string[] = () => [];

  /** The live `auth.jwt` section (a reload replaces it). */
  configuredJwt(): GatewayConfig['auth']['jwt'] {
    return this.config.auth.jwt;
  }

  /** Runs before a new configuration goes live (upstream pools follow it). */
  onReload(listener: ReloadListener): void {
    this.listeners.push(listener);
  }

  /** Serves one proxied request: match, then the route's chain; answers 404/405 itself. */
  handle(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): void {
    ctx.req = req;
    ctx.res = res;
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const match = this.current().match(req.method ?? 'GET', query === -1 ? url : url.slice(0, query));
    if (match.kind === 'route') {
      const route = match.route;
      ctx.compiled = route;
      ctx.route = route.spec.name;
      ctx.routeTemplate = route.spec.path;
      ctx.params = match.params;
      route.chain.run(ctx);
      return;
    }
    ctx.routeTemplate = UNMATCHED_ROUTE;
    if (match.kind === 'method-not-allowed') {
      writeRefusal(ctx, refusals.methodNotAllowed(match.allow.split(', '), `This route answers ${match.allow}.`));
      return;
    }
    const nest = this.nestMethodsAt(url);
    writeRefusal(ctx, nest.length > 0 ? refusals.methodNotAllowed(nest) : refusals.notFound('No route matches this path.'));
  }

  /**
   * Reads the configuration again and, if it validates and compiles, makes it live. Concurrent
   * calls share one reload, and a call that arrives during one runs once more after it.
   */
  reload(reason: string): Promise<ReloadOutcome> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let outcome: ReloadOutcome;
      do {
        this.reloadAgain = false;
        outcome = this.reloadOnce(reason);
      } while (this.reloadAgain);
      return outcome;
    })().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private reloadOnce(reason: string): ReloadOutcome {
    if (!this.source) return { ok: false, problems: ['this instance was configured in code, not from files'] };
    let next: GatewayConfig;
    let table: RouteTable;
    // Read before loading: a change landing in between differs from this and reloads again.
    this.onDisk = readFiles(this.source.files);
    try {
      next = this.source.load();
      table = compileRouteTable(next, this.plugins, this.version + 1, this.compileOptions);
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : [(error as Error).message];
      this.metrics?.configReloaded('failure');
      this.logger.error({ reason, problems }, `configuration reload refused, the current routes stay: ${problems.join('; ')}`);
      return { ok: false, problems };
    }
    const restartNeeded = changedKeysNeedingRestart(this.loaded ?? this.config, next);
    this.loaded = next;
    for (const listener of this.listeners) listener(next);
    for (const key of LIVE_KEYS) (this.config as unknown as Record<LiveKey, unknown>)[key] = (next as unknown as Record<LiveKey, unknown>)[key];
    this.version = table.version;
    this.table = table;
    this.metrics?.configReloaded('success');
    this.logger.log({ reason, version: table.version, routes: table.routes.length }, `configuration reloaded (${reason}): route table v${table.version}`);
    if (restartNeeded.length > 0) this.logger.warn({ keys: restartNeeded }, `changed keys that apply only after a restart: ${restartNeeded.join(', ')}`);
    return { ok: true, version: table.version };
  }

  /**
   * Watches the files' directories, not the files: editors replace a file by rename, and a
   * Kubernetes ConfigMap mount swaps a `..data` symlink without any event naming the file itself.
   * So any event in a directory (debounced) compares the files' bytes with the last load's, and
   * reloads only when they changed. A symlinked file's target directory is watched too when it
   * lies elsewhere (an edit in place there names no file of the watched directory).
   */
  private watch(files: readonly string[]): void {
    const directories = new Set<string>();
    for (const file of files) {
      const directory = dirname(file);
      directories.add(directory);
      try {
        const target = dirname(realpathSync(file));
        if (target !== directory && !target.startsWith(directory + sep)) directories.add(target);
      } catch {
        // Gone already: the directory's events still tell when it comes back.
      }
    }
    for (const directory of directories) {
      try {
        const watcher = watch(directory, () => {
          clearTimeout(this.debounce);
          this.debounce = setTimeout(() => {
            if (this.changedOnDisk()) void this.reload('file change');
          }, 200);
        });
        watcher.on('error', (error) => this.logger.warn(`watching ${directory} stopped: ${error.message}`));
        watcher.unref();
        this.watchers.push(watcher);
      } catch (error) {
        this.logger.warn(`cannot watch ${directory} for configuration changes: ${(error as Error).message}`);
      }
    }
  }

  private changedOnDisk(): boolean {
    if (!this.source) return false;
    const now = readFiles(this.source.files);
    for (const [file, content] of now) if (this.onDisk.get(file) !== content) return true;
    return false;
  }
}

/** Each file's content, undefined when it cannot be read (removed, mid-swap). */
function readFiles(files: readonly string[]): Map<string, string | undefined> {
  const contents = new Map<string, string | undefined>();
  for (const file of files) {
    try {
      contents.set(file, readFileSync(file, 'utf8'));
    } catch {
      contents.set(file, undefined);
    }
  }
  return contents;
}

/** Top-level keys whose values differ, outside what a reload applies. */
function changedKeysNeedingRestart(current: GatewayConfig, next: GatewayConfig): string[] {
  const changed: string[] = [];
  for (const key of Object.keys(next) as (keyof GatewayConfig)[]) {
    if ((LIVE_KEYS as readonly string[]).includes(key)) continue;
    if (JSON.stringify(current[key]) !== JSON.stringify(next[key])) changed.push(key);
  }
  return changed;
}
