import { JwksServer, signingKey } from '../../../test/support/jwks-server';
import { JwksKeySet } from './jwks-key-set';

const silent = { warn: () => undefined, log: () => undefined };

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('JwksKeySet', () => {
  let jwks: JwksServer;
  let set: JwksKeySet | undefined;

  beforeEach(async () => {
    jwks = await JwksServer.start();
  });

  afterEach(async () => {
    set?.stop();
    await jwks.close();
  });

  it('refreshes on its timer without any token asking, and tells its listeners', async () => {
    const [first, second] = await Promise.all([signingKey('RS256', 'a'), signingKey('RS256', 'b')]);
    jwks.keys = [first.jwk];
    set = new JwksKeySet({ url: jwks.url, timeoutMs: 1_000, maxBytes: 65_536, refreshSeconds: 0.1, minRefetchIntervalSeconds: 0.05, logger: silent });
    let changes = 0;
    set.onChange(() => changes++);
    set.start();
    await until(() => set!.stats().keys === 1);
    jwks.keys = [first.jwk, second.jwk];
    await until(() => set!.stats().keys === 2);
    expect(set.stats().changes).toBe(1);
    // Listeners hear of the first set too (nothing was cached before it), and of every change after.
    expect(changes).toBe(2);
    const fetches = jwks.requests;
    await until(() => jwks.requests > fetches + 1);
    expect(set.stats().changes).toBe(1);
  });

  it('logs a failing key set once, not on every fetch, and says when it recovers', async () => {
    const key = await signingKey('ES256', 'e');
    jwks.keys = [key.jwk];
    jwks.mode = 'error';
    const warnings: string[] = [];
    const notes: string[] = [];
    set = new JwksKeySet({
      url: jwks.url,
      timeoutMs: 1_000,
      maxBytes: 65_536,
      refreshSeconds: 0.05,
      minRefetchIntervalSeconds: 0.01,
      logger: { warn: (m: string) => warnings.push(m), log: (m: string) => notes.push(m) },
    });
    set.start();
    await until(() => set!.stats().failures >= 4);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('HTTP 503');
    jwks.mode = 'ok';
    await until(() => set!.stats().keys === 1);
    expect(notes).toEqual([expect.stringContaining('fetched again')]);
  });
});
