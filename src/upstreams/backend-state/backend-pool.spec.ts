import { LeastConnections } from '../balancer/least-connections';
import { BackendPool, type BackendConfig, type BackendPoolOptions } from './backend-pool';

const backend = (id: string, weight = 1, extra: Partial<BackendConfig> = {}): BackendConfig => ({
  id,
  name: `name-${id}`,
  url: `http://127.0.0.1:90${id.charCodeAt(0) % 100}`,
  weight,
  enabled: true,
  pool: 'imgproxy',
  ...extra,
});

function poolAt(options: Partial<BackendPoolOptions> = {}) {
  const clock = { t: 1_000_000 };
  const pool = new BackendPool({
    health: { healthyThreshold: 2, unhealthyThreshold: 3 },
    circuit: { failureThreshold: 2, cooldownMs: 10_000 },
    now: () => clock.t,
    ...options,
  });
  return { pool, clock };
}

/** Chooses and finishes `count` successful requests, returning the backend ids in order. */
function serve(pool: BackendPool, count: number, exclude?: Set<string>): string[] {
  return Array.from({ length: count }, () => {
    const lease = pool.choose({ exclude });
    lease?.succeeded();
    lease?.release();
    return lease?.backend.id ?? '-';
  });
}

function failRequests(pool: BackendPool, id: string, count: number): void {
  const others = new Set(pool.backends().map((b) => b.id).filter((other) => other !== id));
  for (let i = 0; i < count; i++) {
    const lease = pool.choose({ exclude: others });
    expect(lease?.backend.id).toBe(id);
    lease?.failed();
    lease?.release();
  }
}

const count = (ids: string[], id: string) => ids.filter((picked) => picked === id).length;

describe('BackendPool', () => {
  it('balances 70/30 over enabled, healthy backends', () => {
    const { pool } = poolAt();
    pool.replaceAll([backend('a', 70), backend('b', 30)]);
    const ids = serve(pool, 100);

    expect(count(ids, 'a')).toBe(70);
    expect(count(ids, 'b')).toBe(30);
  });

  it('skips disabled and drained backends', () => {
    const { pool } = poolAt();
    pool.replaceAll([backend('a', 1, { enabled: false }), backend('b', 0), backend('c')]);

    expect(new Set(serve(pool, 10))).toEqual(new Set(['c']));
  });

  it('skips a backend the health checks found down until it is healthy again', () => {
    const { pool } = poolAt();
    pool.replaceAll([backend('a'), backend('b')]);

    expect([1, 2, 3].map(() => pool.reportHealthCheck('a', false, 'ECONNREFUSED'))).toEqual([
      undefined,
      undefined,
      'down',
    ]);
    expect(new Set(serve(pool, 10))).toEqual(new Set(['b']));

    expect([1, 2].map(() => pool.reportHealthCheck('a', true))).toEqual([undefined, 'up']);
    expect(new Set(serve(pool, 10))).toEqual(new Set(['a', 'b']));
  });

  it('answers undefined when no backend can serve', () => {
    const { pool } = poolAt();
    expect(pool.choose()).toBeUndefined();

    pool.replaceAll([backend('a')]);
    for (let i = 0; i < 3; i++) pool.reportHealthCheck('a', false);
    expect(pool.choose()).toBeUndefined();
    expect(pool.hasHealthyBackend()).toBe(false);
  });

  it('sends a retry to another backend and gives up when all were tried', () => {
    const { pool } = poolAt();
    pool.replaceAll([backend('a'), backend('b')]);
    const first = pool.choose();
    const retry = pool.choose({ exclude: new Set([first?.backend.id ?? '']) });

    expect(retry?.backend.id).not.toBe(first?.backend.id);
    expect(pool.choose({ exclude: new Set(['a', 'b']) })).toBeUndefined();
  });

  describe('circuit breaker', () => {
    it('skips a backend whose circuit opened after consecutive failures', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      failRequests(pool, 'a', 2);

      expect(new Set(serve(pool, 10))).toEqual(new Set(['b']));
      expect(pool.snapshot().find((b) => b.id === 'a')?.circuit).toBe('open');
    });

    it('reports the opening exactly once', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a')]);
      const leases = [pool.choose(), pool.choose(), pool.choose()];

      expect(leases.map((lease) => lease?.failed())).toEqual([undefined, 'open', undefined]);
    });

    it('lets one probe through after the cool-down and closes when it succeeds', () => {
      const { pool, clock } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      failRequests(pool, 'a', 2);
      clock.t += 10_000;

      const probe = pool.choose({ exclude: new Set(['b']) });
      expect(probe?.backend.id).toBe('a');
      expect(probe?.probe).toBe(true);
      // While the probe is out, everyone else sees a as unavailable.
      expect(new Set(serve(pool, 6))).toEqual(new Set(['b']));
      expect(pool.choose({ exclude: new Set(['b']) })).toBeUndefined();

      expect(probe?.succeeded()).toBe('closed');
      probe?.release();
      expect(new Set(serve(pool, 6))).toEqual(new Set(['a', 'b']));
    });

    it('re-opens when the probe fails, with a longer cool-down', () => {
      const { pool, clock } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      const onlyA = { exclude: new Set(['b']) };
      failRequests(pool, 'a', 2);
      clock.t += 10_000;

      const probe = pool.choose(onlyA);
      expect(probe?.failed()).toBe('open');
      probe?.release();
      clock.t += 10_000;
      expect(pool.choose(onlyA)).toBeUndefined();
      clock.t += 10_000;
      expect(pool.choose(onlyA)?.probe).toBe(true);
    });

    it('frees the probe slot when the probe ends without a verdict (client abort)', () => {
      const { pool, clock } = poolAt();
      pool.replaceAll([backend('a')]);
      failRequests(pool, 'a', 2);
      clock.t += 10_000;

      pool.choose()?.release();
      expect(pool.choose()?.probe).toBe(true);
    });

    it('lets only the probe decide: a straggler from before the trip changes nothing', () => {
      const { pool, clock } = poolAt();
      pool.replaceAll([backend('a')]);
      const straggler = pool.choose();
      failRequests(pool, 'a', 2);
      clock.t += 10_000;
      const probe = pool.choose();

      expect(straggler?.failed()).toBeUndefined();
      expect(pool.snapshot()[0].circuit).toBe('half-open');
      expect(probe?.succeeded()).toBe('closed');
    });
  });

  describe('panic threshold: passive ejection removes at most half the weight', () => {
    function observed(options: Partial<BackendPoolOptions> = {}) {
      const events = { changes: [] as string[][], routed: [] as string[] };
      const observer = {
        panicChanged: (ignored: readonly BackendConfig[]) => events.changes.push(ignored.map((b) => b.id)),
        panicRouted: (b: BackendConfig) => events.routed.push(b.id),
      };
      return { ...poolAt({ observer, ...options }), events };
    }

    it('keeps a lone backend in service when its circuit opens, and says so once', () => {
      const { pool, events } = observed();
      pool.replaceAll([backend('a')]);
      failRequests(pool, 'a', 2);

      expect(serve(pool, 3)).toEqual(['a', 'a', 'a']);
      expect(pool.snapshot()[0]).toMatchObject({ circuit: 'open', circuitIgnored: true, available: true });
      expect(events.changes).toEqual([['a']]);
      expect(events.routed).toEqual(['a', 'a', 'a']);
    });

    it('leaves the circuit to its own cool-down: a request past it is no probe and changes nothing', () => {
      const { pool, clock, events } = observed();
      pool.replaceAll([backend('a')]);
      failRequests(pool, 'a', 2);
      const past = pool.choose();
      expect(past?.probe).toBe(false);
      expect(past?.succeeded()).toBeUndefined();
      past?.release();
      expect(pool.snapshot()[0].circuit).toBe('open');

      clock.t += 10_000;
      const probe = pool.choose();
      expect(probe?.probe).toBe(true);
      expect(probe?.succeeded()).toBe('closed');
      probe?.release();
      serve(pool, 1);
      expect(events.changes).toEqual([['a'], []]);
      expect(pool.snapshot()[0]).toMatchObject({ circuit: 'closed', circuitIgnored: false });
    });

    it('honours open circuits in the order they opened while they fit in half the weight', () => {
      const { pool } = observed();
      pool.replaceAll([backend('a'), backend('b')]);
      failRequests(pool, 'a', 2);
      expect(new Set(serve(pool, 4))).toEqual(new Set(['b']));

      failRequests(pool, 'b', 2);
      expect(new Set(serve(pool, 4))).toEqual(new Set(['b']));
      const byId = new Map(pool.snapshot().map((b) => [b.id, b]));
      expect(byId.get('a')).toMatchObject({ circuit: 'open', circuitIgnored: false, available: false });
      expect(byId.get('b')).toMatchObject({ circuit: 'open', circuitIgnored: true, available: true });
    });

    it('counts weight, not backends', () => {
      const { pool } = observed();
      pool.replaceAll([backend('a', 70), backend('b', 30)]);
      failRequests(pool, 'a', 2);

      expect(count(serve(pool, 10), 'a')).toBe(7);
      expect(pool.snapshot().find((b) => b.id === 'a')?.circuitIgnored).toBe(true);
    });

    it('measures the budget against what the active checks admit, which stay unlimited', () => {
      const { pool } = observed();
      pool.replaceAll([backend('a'), backend('b'), backend('c')]);
      for (let i = 0; i < 3; i++) pool.reportHealthCheck('a', false);
      for (let i = 0; i < 3; i++) pool.reportHealthCheck('b', false);
      expect(new Set(serve(pool, 4))).toEqual(new Set(['c']));

      failRequests(pool, 'c', 2);
      expect(new Set(serve(pool, 4))).toEqual(new Set(['c']));
    });

    it('can be turned into plain ejection with a share of 1', () => {
      const { pool } = observed({ maxEjectedShare: 1 });
      pool.replaceAll([backend('a')]);
      failRequests(pool, 'a', 2);

      expect(pool.choose()).toBeUndefined();
    });
  });

  describe('back-pressure (429)', () => {
    it('shifts load away from a backend for a moment, then brings it back by itself', () => {
      const { pool, clock } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      const lease = pool.choose({ exclude: new Set(['b']) });
      lease?.backPressure(2_000);
      lease?.release();

      expect(new Set(serve(pool, 10))).toEqual(new Set(['b']));
      clock.t += 2_000;
      expect(count(serve(pool, 10), 'a')).toBe(5);
    });

    it('still uses a backend under back-pressure when it is the only one left', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      pool.choose({ exclude: new Set(['b']) })?.backPressure(5_000);
      for (let i = 0; i < 3; i++) pool.reportHealthCheck('b', false);

      expect(serve(pool, 3)).toEqual(['a', 'a', 'a']);
      expect(pool.choose({ exclude: new Set(['b']) })?.backend.id).toBe('a');
    });

    it('never counts as a failure', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a')]);
      for (let i = 0; i < 10; i++) {
        const lease = pool.choose();
        lease?.backPressure();
        lease?.release();
      }

      expect(pool.snapshot()[0]).toMatchObject({ circuit: 'closed', backPressure: true, available: true });
    });

    it('hands the probe slot back when the probe got a 429', () => {
      const { pool, clock } = poolAt();
      pool.replaceAll([backend('a')]);
      failRequests(pool, 'a', 2);
      clock.t += 10_000;
      pool.choose()?.backPressure(1_000);

      const next = pool.choose();
      expect(next?.probe).toBe(true);
      expect(next?.succeeded()).toBe('closed');
    });
  });

  describe('replaceAll', () => {
    it('keeps the health and circuit of backends that survive a change', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a'), backend('b'), backend('c')]);
      failRequests(pool, 'a', 2);
      for (let i = 0; i < 3; i++) pool.reportHealthCheck('b', false);

      pool.replaceAll([backend('a', 2), backend('b', 5), backend('c', 2), backend('d')]);
      const byId = new Map(pool.snapshot().map((b) => [b.id, b]));
      expect(byId.get('a')).toMatchObject({ circuit: 'open', weight: 2 });
      expect(byId.get('b')).toMatchObject({ healthy: false });
      expect(byId.get('d')).toMatchObject({ healthy: true, circuit: 'closed' });
      expect(new Set(serve(pool, 12))).toEqual(new Set(['c', 'd']));
    });

    it('keeps the balancer rotation of backends that survive', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      expect(serve(pool, 1)).toEqual(['a']);

      pool.replaceAll([backend('a'), backend('b'), backend('c')]);
      expect(serve(pool, 1)).toEqual(['b']);
    });

    it('drops removed backends and starts a re-pointed one afresh', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      failRequests(pool, 'a', 2);

      pool.replaceAll([backend('a', 1, { url: 'http://10.0.0.9:8080' })]);
      expect(pool.snapshot().map((b) => [b.id, b.circuit, b.url])).toEqual([['a', 'closed', 'http://10.0.0.9:8080']]);
    });

    it('seeds a new backend from its stored health, but not one already tracked', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a')]);
      pool.replaceAll([backend('a', 1, { healthy: false }), backend('b', 1, { healthy: false })]);

      expect(pool.snapshot().map((b) => b.healthy)).toEqual([true, false]);
    });

    it('refuses duplicate ids and keeps the previous configuration', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a')]);

      expect(() => pool.replaceAll([backend('b'), backend('b')])).toThrow(RangeError);
      expect(pool.backends().map((b) => b.id)).toEqual(['a']);
    });
  });

  describe('in-flight requests', () => {
    it('counts a request from choose until release, once', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a')]);
      const first = pool.choose();
      const second = pool.choose();
      expect(pool.snapshot()[0].inFlight).toBe(2);

      first?.release();
      first?.release();
      expect(pool.snapshot()[0].inFlight).toBe(1);
      second?.release();
      expect(pool.snapshot()[0].inFlight).toBe(0);
    });

    it('feeds least-connections, also after switching to it with requests in flight', () => {
      const { pool } = poolAt();
      pool.replaceAll([backend('a'), backend('b')]);
      const held = [pool.choose(), pool.choose(), pool.choose()];
      expect(held.map((lease) => lease?.backend.id)).toEqual(['a', 'b', 'a']);

      // A fresh least-connections that did not learn the 2 vs 1 in flight would pick a (first).
      pool.setBalancer('least-connections');
      expect(pool.choose()?.backend.id).toBe('b');

      held[0]?.release();
      held[2]?.release();
      expect(pool.choose()?.backend.id).toBe('a');
    });

    it('forgets a removed backend entirely, so re-adding it starts from a clean slate', () => {
      const strategy = new LeastConnections();
      const { pool } = poolAt({ balancer: strategy });
      pool.replaceAll([backend('a'), backend('b')]);
      const held = [pool.choose(), pool.choose(), pool.choose()];
      expect(held.map((lease) => lease?.backend.id)).toEqual(['a', 'b', 'a']);

      pool.replaceAll([backend('b')]);
      pool.replaceAll([backend('a'), backend('b')]);
      expect(pool.choose()?.backend.id).toBe('a');
      // The old requests finishing must not pull the new a's count below its one request.
      for (const lease of held) lease?.release();
      expect(pool.snapshot().map((b) => b.inFlight)).toEqual([1, 0]);
      expect(strategy.activeCount('a')).toBe(1);
    });
  });

  it('reports every backend for health endpoints and metrics', () => {
    const { pool, clock } = poolAt();
    pool.replaceAll([backend('a', 70), backend('b', 30, { enabled: false })]);
    pool.reportHealthCheck('a', false, 'timeout after 5000 ms');
    const lease = pool.choose();

    expect(pool.snapshot()).toEqual([
      {
        id: 'a',
        name: 'name-a',
        url: backend('a').url,
        pool: 'imgproxy',
        weight: 70,
        enabled: true,
        healthy: true,
        circuit: 'closed',
        circuitIgnored: false,
        consecutiveFailures: 0,
        backPressure: false,
        inFlight: 1,
        available: true,
        lastCheckAt: clock.t,
        lastCheckOk: false,
        lastError: 'timeout after 5000 ms',
      },
      {
        id: 'b',
        name: 'name-b',
        url: backend('b').url,
        pool: 'imgproxy',
        weight: 30,
        enabled: false,
        healthy: true,
        circuit: 'closed',
        circuitIgnored: false,
        consecutiveFailures: 0,
        backPressure: false,
        inFlight: 0,
        available: false,
      },
    ]);
    lease?.release();
  });

  it('ignores a health check result for a backend removed meanwhile', () => {
    const { pool } = poolAt();
    pool.replaceAll([backend('a')]);
    pool.replaceAll([]);

    expect(pool.reportHealthCheck('a', false)).toBeUndefined();
  });
});
