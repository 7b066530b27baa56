import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { CachedEntry } from './cached-entry';
import { HEADER_BYTES, decodeEntry, decodeHeader, decodeMetadata, encodeEntry } from './disk-format';

/** What the index keeps in memory per file (the rest is in the file). */
export interface DiskRecord {
  readonly key: string;
  readonly base: string;
  readonly tenantId: string;
  readonly source: string;
  readonly varyNames: readonly string[];
  /** File size in bytes, counted against diskMaxBytes. */
  readonly size: number;
  readonly storedAt: number;
  readonly expiresAt: number;
}

export type RecordMatch = (record: { tenantId: string; source: string }) => boolean;

export interface DiskTierLog {
  warn(message: string): void;
  log(message: string): void;
}

export interface DiskTierOptions {
  dir: string;
  maxBytes: number;
  /** A file joined the index (a write, or found by the rebuild). */
  onAdd?: (record: DiskRecord) => void;
  /** A file left the index; `evicted` when it made room. */
  onRemove?: (record: DiskRecord, evicted: boolean) => void;
  log: DiskTierLog;
}

/** How the rebuild starts: drop every file, or keep them except what these purges select. */
export interface DiskOpenOptions {
  reset: boolean;
  purges: readonly RecordMatch[];
}

const SHARDS = 256;
const FILE_NAME = /^[0-9a-f]{64}$/;
/** Writes wait in memory while the disk is slow; beyond this they are skipped (the entry stays in memory). */
const MAX_PENDING_WRITE_BYTES = 64 * 1024 * 1024;
/** Files whose header is read at once while the index is rebuilt. */
const SCAN_CONCURRENCY = 8;
/** First read of a file during the rebuild: the fixed header and, nearly always, all metadata. */
const SCAN_READ_BYTES = 8 * 1024;
const CURSOR_FILE = 'purge-cursor';

/**
 * The disk tier (docs/cache.md): one file per entry under `<dir>/<2 hex>/<sha-256 of the key>`,
 * written to `<dir>/tmp/` and renamed into place, so a reader never sees half a file. The index
 * (key → record) lives in memory, in least-recently-used order, and is rebuilt from the file
 * headers at start in the background; until then (`ready` false) the tier is neither read nor
 * written. Total file size is bounded by `maxBytes`: the least recently used files go first.
 */
export class DiskTier {
  private readonly index = new Map<string, DiskRecord>();
  private totalBytes = 0;
  private isReady = false;
  private closed = false;
  /** Purges that arrived before the index was rebuilt, applied to the files it finds. */
  private scanPurges: RecordMatch[] | undefined = [];
  private readonly writing = new Map<string, { job: WriteJob; done: Promise<void> }>();
  private pendingWriteBytes = 0;
  private readonly background = new Set<Promise<unknown>>();
  /** Tenant ids and Vary name lists repeat across thousands of records: one copy each (docs/cache.md, sizing). */
  private readonly tenantIds = new Map<string, string>();
  private readonly nameLists = new Map<string, readonly string[]>();

  constructor(private readonly options: DiskTierOptions) {}

  get ready(): boolean {
    return this.isReady;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get count(): number {
    return this.index.size;
  }

  /** Rebuilds the index from the files (or removes them all), then serves. Never throws. */
  async open(options: DiskOpenOptions): Promise<void> {
    const started = Date.now();
    this.scanPurges = [...options.purges, ...(this.scanPurges ?? [])];
    try {
      await fs.mkdir(join(this.options.dir, 'tmp'), { recursive: true });
      // Leftovers of writes a crash interrupted.
      await removeChildren(join(this.options.dir, 'tmp'));
      const shards = Array.from({ length: SHARDS }, (_, i) => i.toString(16).padStart(2, '0'));
      await Promise.all(shards.map((shard) => fs.mkdir(join(this.options.dir, shard), { recursive: true })));
      if (options.reset) {
        await Promise.all(shards.map((shard) => removeChildren(join(this.options.dir, shard))));
      } else {
        const found: DiskRecord[] = [];
        for (const shard of shards) {
          if (this.closed) return;
          const names = (await fs.readdir(join(this.options.dir, shard))).filter((name) => FILE_NAME.test(name));
          await forEachLimit(names, SCAN_CONCURRENCY, async (name) => {
            const record = await this.readRecord(join(this.options.dir, shard, name), name, started);
            if (record) found.push(record);
          });
        }
        // The files' age stands for their last use: oldest first, evicted first.
        found.sort((a, b) => a.storedAt - b.storedAt);
        const purges = this.scanPurges ?? [];
        for (const record of found) {
          if (purges.some((match) => match(record))) this.unlink(record.key);
          else this.add(record);
        }
        this.evictOverflow();
      }
      this.isReady = !this.closed;
      this.options.log.log(
        `disk cache ${options.reset ? 'emptied' : 'index rebuilt'}: ${this.index.size} entries, ${this.totalBytes} bytes in ${Date.now() - started} ms`,
      );
    } catch (error) {
      this.options.log.warn(`disk cache unavailable (${(error as Error).message}); serving from memory only`);
    } finally {
      this.scanPurges = undefined;
    }
  }

  has(key: string): boolean {
    return this.isReady && this.index.has(key);
  }

  /**
   * The entry, verified (length and checksum), and made most recently used; a damaged, missing or
   * expired file is dropped and undefined returned. Undefined too when the entry was purged or
   * replaced while it was being read.
   */
  async read(key: string, now: number): Promise<CachedEntry | undefined> {
    const record = this.index.get(key);
    if (record === undefined || !this.isReady) return undefined;
    if (record.expiresAt <= now) {
      this.remove(record, true);
      return undefined;
    }
    let file: Buffer;
    try {
      file = await fs.readFile(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.options.log.warn(`disk cache read failed: ${(error as Error).message}`);
      if (this.index.get(key) === record) this.remove(record, false);
      return undefined;
    }
    if (this.index.get(key) !== record) return undefined;
    const entry = decodeEntry(file);
    if (entry === undefined || entry.key !== key) {
      this.options.log.warn(`disk cache file ${this.pathOf(key)} is damaged and was dropped`);
      this.remove(record, true);
      return undefined;
    }
    this.index.delete(key);
    this.index.set(key, record);
    return entry;
  }

  /** Stores an entry in the background; skipped while the tier is not ready or the disk lags. */
  write(entry: CachedEntry): void {
    if (!this.isReady || this.closed) return;
    if (this.pendingWriteBytes + entry.body.length > MAX_PENDING_WRITE_BYTES) return;
    const job: WriteJob = { entry, cancelled: false };
    const previous = this.writing.get(entry.key);
    if (previous) previous.job.cancelled = true;
    this.pendingWriteBytes += entry.body.length;
    // Writes of one key run one after the other, so an older one can never land last.
    const done = (previous?.done ?? Promise.resolve())
      .then(() => this.runWrite(job))
      .catch((error: Error) => this.options.log.warn(`disk cache write failed: ${error.message}`))
      .finally(() => {
        this.pendingWriteBytes -= entry.body.length;
        if (this.writing.get(entry.key)?.job === job) this.writing.delete(entry.key);
      });
    this.writing.set(entry.key, { job, done });
    this.track(done);
  }

  /** Drops the files `match` selects (pending writes included); returns how many were indexed. */
  purge(match: RecordMatch): number {
    this.scanPurges?.push(match);
    for (const { job } of this.writing.values()) if (match(job.entry)) job.cancelled = true;
    const doomed: DiskRecord[] = [];
    for (const record of this.index.values()) if (match(record)) doomed.push(record);
    for (const record of doomed) this.remove(record, true);
    return doomed.length;
  }

  /** Drops every file. */
  clear(): number {
    return this.purge(() => true);
  }

  /** The id of the last purge applied to these files (docs/cache.md, purge after a restart). */
  async readCursor(): Promise<string | undefined> {
    try {
      const text = (await fs.readFile(join(this.options.dir, CURSOR_FILE), 'utf8')).trim();
      return text === '' ? undefined : text;
    } catch {
      return undefined;
    }
  }

  writeCursor(cursor: string): void {
    const target = join(this.options.dir, CURSOR_FILE);
    const temp = join(this.options.dir, 'tmp', `${CURSOR_FILE}.${randomBytes(6).toString('hex')}`);
    this.track(
      fs
        .mkdir(join(this.options.dir, 'tmp'), { recursive: true })
        .then(() => fs.writeFile(temp, cursor))
        .then(() => fs.rename(temp, target))
        .catch((error: Error) => this.options.log.warn(`disk cache cursor not written: ${error.message}`)),
    );
  }

  /** Whether the directory holds any entry file (read before the rebuild decides to keep them). */
  async holdsFiles(): Promise<boolean> {
    for (let i = 0; i < SHARDS; i++) {
      const names = await fs.readdir(join(this.options.dir, i.toString(16).padStart(2, '0'))).catch(() => [] as string[]);
      if (names.some((name) => FILE_NAME.test(name))) return true;
    }
    return false;
  }

  /** Waits for the writes and removals under way (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Stops taking writes, lets those accepted finish, then stops. */
  async close(): Promise<void> {
    this.isReady = false;
    await this.flush();
    this.closed = true;
  }

  private async runWrite(job: WriteJob): Promise<void> {
    if (job.cancelled || this.closed) return;
    const { entry } = job;
    const name = fileName(entry.key);
    const temp = join(this.options.dir, 'tmp', `${name}.${randomBytes(6).toString('hex')}`);
    const target = this.pathOf(entry.key);
    const parts = encodeEntry(entry);
    const handle = await fs.open(temp, 'wx');
    try {
      await handle.writev(parts);
    } finally {
      await handle.close();
    }
    if (job.cancelled || this.closed) {
      await fs.rm(temp, { force: true });
      return;
    }
    await fs.rename(temp, target);
    // A purge may have come while the file was renamed: it must not stay.
    if (job.cancelled) {
      await fs.rm(target, { force: true });
      return;
    }
    const size = parts[0].length + parts[1].length;
    const old = this.index.get(entry.key);
    if (old) this.remove(old, false, false);
    this.add({
      key: entry.key,
      base: entry.base,
      tenantId: entry.tenantId,
      source: entry.source,
      varyNames: entry.varyNames,
      size,
      storedAt: entry.storedAt,
      expiresAt: entry.expiresAt,
    });
    this.evictOverflow();
  }

  /** The record of one file from its header; damaged, truncated or expired files are removed. */
  private async readRecord(path: string, name: string, now: number): Promise<DiskRecord | undefined> {
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(path, 'r');
      const { size } = await handle.stat();
      const first = Buffer.alloc(Math.min(size, SCAN_READ_BYTES));
      const { bytesRead } = await handle.read(first, 0, first.length, 0);
      const header = decodeHeader(first.subarray(0, bytesRead));
      if (!header || size !== HEADER_BYTES + header.metaLength + header.bodyLength) return this.discard(path, 'damaged');
      let metaBytes = first.subarray(HEADER_BYTES, Math.min(bytesRead, HEADER_BYTES + header.metaLength));
      if (metaBytes.length < header.metaLength) {
        metaBytes = Buffer.alloc(header.metaLength);
        await handle.read(metaBytes, 0, header.metaLength, HEADER_BYTES);
      }
      const decoded = decodeMetadata(metaBytes);
      if (!decoded || fileName(decoded.identity.key) !== name) return this.discard(path, 'damaged');
      const { identity } = decoded;
      if (identity.expiresAt <= now) return this.discard(path, undefined);
      return {
        key: identity.key,
        // A slice of the key shares its memory.
        base: identity.key.startsWith(identity.base) ? identity.key.slice(0, identity.base.length) : identity.base,
        tenantId: identity.tenantId,
        source: identity.source,
        varyNames: identity.varyNames,
        size,
        storedAt: identity.storedAt,
        expiresAt: identity.expiresAt,
      };
    } catch (error) {
      this.options.log.warn(`disk cache file ${path} unreadable: ${(error as Error).message}`);
      return undefined;
    } finally {
      await handle?.close();
    }
  }

  private async discard(path: string, why: string | undefined): Promise<undefined> {
    if (why) this.options.log.warn(`disk cache file ${path} is ${why} and was dropped`);
    await fs.rm(path, { force: true });
    return undefined;
  }

  private add(fields: DiskRecord): void {
    const record: DiskRecord = { ...fields, tenantId: this.tenantIdOf(fields.tenantId), varyNames: this.namesOf(fields.varyNames) };
    this.index.set(record.key, record);
    this.totalBytes += record.size;
    this.options.onAdd?.(record);
  }

  private tenantIdOf(id: string): string {
    const known = this.tenantIds.get(id);
    if (known !== undefined) return known;
    this.tenantIds.set(id, id);
    return id;
  }

  private namesOf(names: readonly string[]): readonly string[] {
    const joined = names.join(',');
    const known = this.nameLists.get(joined);
    if (known !== undefined) return known;
    this.nameLists.set(joined, names);
    return names;
  }

  private remove(record: DiskRecord, unlink: boolean, evicted = false): void {
    if (this.index.get(record.key) !== record) return;
    this.index.delete(record.key);
    this.totalBytes -= record.size;
    if (unlink) this.unlink(record.key);
    this.options.onRemove?.(record, evicted);
  }

  private evictOverflow(): void {
    for (const record of this.index.values()) {
      if (this.totalBytes <= this.options.maxBytes) break;
      this.remove(record, true, true);
    }
  }

  private unlink(key: string): void {
    this.track(fs.rm(this.pathOf(key), { force: true }).catch((error: Error) => this.options.log.warn(`disk cache file not removed: ${error.message}`)));
  }

  private track(promise: Promise<unknown>): void {
    this.background.add(promise);
    void promise.finally(() => this.background.delete(promise));
  }

  private pathOf(key: string): string {
    const name = fileName(key);
    return join(this.options.dir, name.slice(0, 2), name);
  }
}

interface WriteJob {
  entry: CachedEntry;
  cancelled: boolean;
}

function fileName(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

async function removeChildren(dir: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.map((name) => fs.rm(join(dir, name), { recursive: true, force: true })));
}

async function forEachLimit<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
