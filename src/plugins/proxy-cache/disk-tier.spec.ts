import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CachedEntry } from './cached-entry';
import { type DiskRecord, DiskTier } from './disk-tier';
import { ResponseHead } from './response-head';

const quiet = { warn: () => undefined, log: () => undefined };

function entry(key: string, body: string | Buffer, options: { tenantId?: string; source?: string; expiresAt?: number; storedAt?: number } = {}): CachedEntry {
  return new CachedEntry(
    {
      key,
      base: key.split('\n').slice(0, 2).join('\n'),
      tenantId: options.tenantId ?? 't1',
      source: options.source ?? `local:///${key}`,
      varyNames: ['accept'],
      storedAt: options.storedAt ?? Date.now(),
      expiresAt: options.expiresAt ?? Date.now() + 3_600_000,
    },
    new ResponseHead(200, ['content-type', 'image/webp', 'etag', '"e1"', 'age', '5']),
    typeof body === 'string' ? Buffer.from(body) : body,
  );
}

/** Every entry file under the tier's directory (not the temp folder or the cursor). */
function entryFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /^[0-9a-f]{2}$/.test(name))
    .flatMap((shard) => readdirSync(join(dir, shard)).map((name) => join(dir, shard, name)));
}

describe('disk tier', () => {
  let dir: string;
  let tiers: DiskTier[];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'igw-disk-tier-'));
    tiers = [];
  });
  afterEach(async () => {
    await Promise.all(tiers.map((tier) => tier.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(options: { maxBytes?: number; reset?: boolean; purges?: ((r: { tenantId: string; source: string }) => boolean)[]; onRemove?: (r: DiskRecord, evicted: boolean) => void } = {}): Promise<DiskTier> {
    const tier = new DiskTier({ dir, maxBytes: options.maxBytes ?? 1 << 30, log: quiet, onRemove: options.onRemove });
    tiers.push(tier);
    await tier.open({ reset: options.reset ?? false, purges: options.purges ?? [] });
    return tier;
  }

  it('writes through a temporary file and a rename, leaving no temporary behind', async () => {
    const tier = await open();
    tier.write(entry('t1\n/a\naccept=webp', 'hello'));
    await tier.flush();
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(entryFiles(dir)).toHaveLength(1);
    const read = await tier.read('t1\n/a\naccept=webp', Date.now());
    expect(read?.body.toString()).toBe('hello');
    expect(read?.head.fields).toEqual(['content-type', 'image/webp', 'etag', '"e1"']);
    expect(read?.head.initialAge).toBe(5);
  });

  it('keeps its entries across a restart: the index is rebuilt from the files', async () => {
    const first = await open();
    first.write(entry('t1\n/a', 'one'));
    first.write(entry('t1\n/b', 'two', { tenantId: 't1', source: 'https://cdn.example.com/b.jpg' }));
    await first.close();

    const second = await open();
    expect(second.count).toBe(2);
    expect((await second.read('t1\n/b', Date.now()))?.body.toString()).toBe('two');
  });

  it('serves nothing before the index is rebuilt', async () => {
    const first = await open();
    first.write(entry('t1\n/a', 'one'));
    await first.close();
    const second = new DiskTier({ dir, maxBytes: 1 << 30, log: quiet });
    tiers.push(second);
    expect(second.has('t1\n/a')).toBe(false);
    second.write(entry('t1\n/b', 'ignored while not ready'));
    await second.open({ reset: false, purges: [] });
    expect(second.has('t1\n/a')).toBe(true);
    expect(second.has('t1\n/b')).toBe(false);
  });

  it('drops a truncated file when the index is rebuilt, never serving it', async () => {
    const first = await open();
    first.write(entry('t1\n/a', Buffer.alloc(4096, 7)));
    first.write(entry('t1\n/b', 'intact'));
    await first.close();
    const [victim] = entryFiles(dir).filter((file) => statSync(file).size > 4096);
    truncateSync(victim, statSync(victim).size - 100);

    const second = await open();
    expect(second.has('t1\n/a')).toBe(false);
    expect(second.has('t1\n/b')).toBe(true);
    await second.flush();
    expect(entryFiles(dir)).toHaveLength(1);
  });

  it('drops a file whose bytes changed (checksum) when it is read', async () => {
    const tier = await open();
    tier.write(entry('t1\n/a', Buffer.alloc(1000, 1)));
    await tier.flush();
    const [file] = entryFiles(dir);
    const bytes = readFileSync(file);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(file, bytes);

    expect(await tier.read('t1\n/a', Date.now())).toBeUndefined();
    expect(tier.has('t1\n/a')).toBe(false);
    await tier.flush();
    expect(entryFiles(dir)).toEqual([]);
  });

  it('ignores files that are not entries at all, and empties leftovers of interrupted writes', async () => {
    const first = await open();
    await first.close();
    writeFileSync(join(dir, '00', 'f'.repeat(64)), 'not an entry');
    writeFileSync(join(dir, 'tmp', 'half-written'), 'partial');
    const second = await open();
    expect(second.count).toBe(0);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('stays within diskMaxBytes by removing the least recently used files', async () => {
    const evicted: string[] = [];
    const tier = await open({ maxBytes: 6_000, onRemove: (r, wasEvicted) => wasEvicted && evicted.push(r.key) });
    for (const key of ['t1\n/a', 't1\n/b', 't1\n/c']) {
      tier.write(entry(key, Buffer.alloc(1_500)));
      await tier.flush();
    }
    await tier.read('t1\n/a', Date.now());
    tier.write(entry('t1\n/d', Buffer.alloc(1_500)));
    await tier.flush();
    expect(tier.bytes).toBeLessThanOrEqual(6_000);
    expect(evicted).toEqual(['t1\n/b']);
    expect(entryFiles(dir)).toHaveLength(3);
  });

  it('rebuilds the bound after a restart with a smaller budget, oldest files first', async () => {
    const first = await open();
    const now = Date.now();
    first.write(entry('t1\n/old', Buffer.alloc(2_000), { storedAt: now - 2_000 }));
    first.write(entry('t1\n/new', Buffer.alloc(2_000), { storedAt: now - 1_000 }));
    await first.close();
    const second = await open({ maxBytes: 3_000 });
    expect([second.has('t1\n/old'), second.has('t1\n/new')]).toEqual([false, true]);
  });

  it('drops expired files, when read and when the index is rebuilt', async () => {
    const first = await open();
    first.write(entry('t1\n/a', 'x', { expiresAt: Date.now() + 200 }));
    await first.flush();
    expect(await first.read('t1\n/a', Date.now() + 1_000)).toBeUndefined();
    first.write(entry('t1\n/b', 'x', { expiresAt: Date.now() - 1 }));
    await first.close();
    const second = await open();
    expect(second.count).toBe(0);
  });

  it('purges the files a selector matches, those still being written included', async () => {
    const tier = await open();
    tier.write(entry('t1\n/a', 'a', { source: 'local:///avatars/a.jpg' }));
    tier.write(entry('t1\n/b', 'b', { source: 'local:///banners/b.jpg' }));
    await tier.flush();
    tier.write(entry('t1\n/c', 'c', { source: 'local:///avatars/c.jpg' }));
    const dropped = tier.purge((r) => r.tenantId === 't1' && r.source.startsWith('local:///avatars/'));
    await tier.flush();
    expect(dropped).toBe(1);
    expect([tier.has('t1\n/a'), tier.has('t1\n/b'), tier.has('t1\n/c')]).toEqual([false, true, false]);
    expect(entryFiles(dir)).toHaveLength(1);
  });

  it('applies purges given at open, and those arriving before or during the rebuild, to the files it finds', async () => {
    const first = await open();
    first.write(entry('t1\n/a', 'a', { tenantId: 't1' }));
    first.write(entry('t2\n/b', 'b', { tenantId: 't2' }));
    first.write(entry('t3\n/c', 'c', { tenantId: 't3' }));
    first.write(entry('t4\n/d', 'd', { tenantId: 't4' }));
    await first.close();
    const second = new DiskTier({ dir, maxBytes: 1 << 30, log: quiet });
    tiers.push(second);
    second.purge((r) => r.tenantId === 't2');
    const opened = second.open({ reset: false, purges: [(r) => r.tenantId === 't1'] });
    second.purge((r) => r.tenantId === 't3');
    await opened;
    expect([second.has('t1\n/a'), second.has('t2\n/b'), second.has('t3\n/c'), second.has('t4\n/d')]).toEqual([false, false, false, true]);
    await second.flush();
    expect(entryFiles(dir)).toHaveLength(1);
  });

  it('starts empty when told to reset', async () => {
    const first = await open();
    first.write(entry('t1\n/a', 'a'));
    await first.close();
    const second = await open({ reset: true });
    expect(second.count).toBe(0);
    expect(entryFiles(dir)).toEqual([]);
  });

  it('keeps a purge cursor beside the files', async () => {
    const tier = await open();
    expect(await tier.readCursor()).toBeUndefined();
    tier.writeCursor('1700000000000-3');
    await tier.flush();
    expect(await tier.readCursor()).toBe('1700000000000-3');
    expect(await tier.holdsFiles()).toBe(false);
    tier.write(entry('t1\n/a', 'a'));
    await tier.flush();
    expect(await tier.holdsFiles()).toBe(true);
  });
});
