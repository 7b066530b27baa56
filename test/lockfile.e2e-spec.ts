import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  version?: string;
  optionalDependencies?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/**
 * `npm ci` refuses a lock that lacks another platform's optional binary (a lock written by an
 * install that skipped them). CI installs with `npm ci` only, so the lock must stay complete.
 */
describe('package-lock.json', () => {
  const root = join(__dirname, '..');
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as LockEntry;

  /** npm's resolution: the nearest node_modules folder up from the dependent package. */
  function resolves(from: string, name: string): boolean {
    let base = from;
    for (;;) {
      if (lock.packages[`${base ? `${base}/` : ''}node_modules/${name}`]) return true;
      if (!base) return false;
      const cut = base.lastIndexOf('node_modules/');
      base = cut <= 0 ? '' : base.slice(0, cut - 1);
    }
  }

  it('holds an entry for every optional dependency of every locked package, whatever its platform', () => {
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        if (!resolves(path, name)) missing.push(`${name} (of ${path || 'the root'})`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('pins every direct dependency exactly, at the version the lock holds', () => {
    const drift: string[] = [];
    for (const deps of [pkg.dependencies ?? {}, pkg.devDependencies ?? {}]) {
      for (const [name, range] of Object.entries(deps)) {
        const locked = lock.packages[`node_modules/${name}`]?.version;
        if (range !== locked) drift.push(`${name}: package.json ${range}, lock ${locked ?? 'absent'}`);
      }
    }
    expect(drift).toEqual([]);
  });
});
