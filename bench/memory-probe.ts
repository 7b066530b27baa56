/**
 * Preloaded into a gateway process by bench/memory-at-start.ts (`node --expose-gc -r
 * memory-probe.js dist/src/main.js`): on the runner's IPC request it reports what the process's
 * memory is made of (after a full collection) and may write a heap snapshot.
 */
import { statSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

export interface ModuleGroup {
  files: number;
  sourceBytes: number;
  /** The groups whose files required this group's first (why it is loaded). */
  loadedBy: string[];
}

export interface MemoryReport {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  spaces: Record<string, number>;
  builtins: number;
  modules: Record<string, ModuleGroup>;
  snapshot?: string;
}

/** `node_modules/@scope/name/...` → `@scope/name`; the project's own files → `(gateway) <folder>`. */
export function moduleGroup(file: string): string {
  const at = file.lastIndexOf('node_modules/');
  if (at !== -1) {
    const parts = file.slice(at + 'node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const own = /\/dist\/(src|bench)\/([^/]+)/.exec(file);
  return own ? `(gateway) ${own[1]}/${own[2].replace(/\.js$/, '')}` : '(other)';
}

function report(snapshotPath?: string): MemoryReport {
  const collect = (globalThis as { gc?: () => void }).gc;
  collect?.();
  collect?.();
  const memory = process.memoryUsage();
  const modules: Record<string, ModuleGroup> = {};
  for (const [file, entry] of Object.entries(require.cache)) {
    const name = moduleGroup(file);
    const group = (modules[name] ??= { files: 0, sourceBytes: 0, loadedBy: [] });
    group.files++;
    // `parent` is the module that required this one first: enough to tell why a package is here.
    const parent = (entry as { parent?: { filename?: string } } | undefined)?.parent?.filename;
    const by = parent ? moduleGroup(parent) : undefined;
    if (by && by !== name && !group.loadedBy.includes(by)) group.loadedBy.push(by);
    try {
      group.sourceBytes += statSync(file).size;
    } catch {
      // a module without a file (a JSON or virtual entry) adds no source
    }
  }
  const spaces: Record<string, number> = {};
  for (const space of getHeapSpaceStatistics()) spaces[space.space_name] = space.space_used_size;
  const builtins = (process as unknown as { moduleLoadList?: string[] }).moduleLoadList?.length ?? 0;
  return {
    rss: memory.rss,
    heapTotal: memory.heapTotal,
    heapUsed: memory.heapUsed,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    spaces,
    builtins,
    modules,
    snapshot: snapshotPath ? writeHeapSnapshot(snapshotPath) : undefined,
  };
}

process.on('message', (message: { type?: string; snapshot?: string }) => {
  if (message.type === 'memory-report') process.send?.({ type: 'memory-report', report: report(message.snapshot) });
});
