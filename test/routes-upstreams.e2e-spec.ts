import type { ServerResponse } from 'node:http';
import { TestBackend, rawRequest, startBackend, waitFor } from './support/http-backends';
import { DnsServer } from './support/dns-server';
import { metricValue } from './support/metrics';
import { HIGH_RATE_LIMIT_CONFIG } from './support/tenants';
import { TestApp, createTestApp } from './support/test-app';

jest.setTimeout(60_000);

/** Which backend answered each of `count` sequential requests (the test backends answer their name). */
async function servedBy(gw: TestApp, path: string, count: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await rawRequest(gw.url, path, { headers: headers(i) });
    names.push(res.status === 200 ? res.body.toString() : `status ${res.status}`);
  }
  return names;
}

function tally(names: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

/** The same server again on the port the gateway knows (a backend that restarted). */
async function restart(backend: TestBackend): Promise<TestBackend> {
  return startBackend({ name: backend.name, port: backend.port, host: backend.host });
}

/**
 * Upstreams from YAML, seen in traffic: each balancer's distribution, active health checks and
 * circuit breakers ejecting a backend and taking it back, DNS discovery following a DNS server of
 * the test's own. Real gateway, PostgreSQL and Redis; every backend a real HTTP server.
 */
describe('upstream balancers (e2e)', () => {
  const backends: TestBackend[] = [];
  let gw: TestApp;
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    for (const name of ['w1', 'w2', 'l1', 'l2', 'h1', 'h2', 'h3', 'r1', 'r2']) backends.push(await startBackend({ name }));
    const [w1, w2, l1, l2, h1, h2, h3, r1, r2] = backends;
    for (const backend of [l1, l2]) {
      backend.handler = (req, res) => {
        if (req.url?.startsWith('/lc/hold')) held.push(res);
        else res.end(backend.name);
      };
    }
    const upstream = (balancer: string, ...members: { backend: TestBackend; weight?: number }[]) => ({
      balancer,
      backends: members.map(({ backend, weight }) => ({ name: backend.name, url: backend.url, weight: weight ?? 1 })),
    });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        // The ip-hash test speaks for many clients through one trusted proxy (the test itself).
        server: { trustedProxies: ['127.0.0.1/32'] },
        upstreams: {
          weighted: upstream('weighted-round-robin', { backend: w1, weight: 3 }, { backend: w2, weight: 1 }),
          least: upstream('least-connections', { backend: l1 }, { backend: l2 }),
          hashed: upstream('ip-hash', { backend: h1 }, { backend: h2 }, { backend: h3 }),
          random: upstream('random', { backend: r1 }, { backend: r2 }),
        },
        routes: [
          { name: 'wrr', path: '/wrr/*', upstream: 'weighted', auth: 'none' },
          { name: 'lc', path: '/lc/*', upstream: 'least', auth: 'none' },
          { name: 'ih', path: '/ih/*', upstream: 'hashed', auth: 'none' },
          { name: 'rnd', path: '/rnd/*', upstream: 'random', auth: 'none' },
        ],
      },
    });
  });

  afterAll(async () => {
    for (const res of held) res.end('released');
    await gw?.close();
    await Promise.all(backends.map((backend) => backend.stop()));
  });

  it('weighted-round-robin: exactly 3 to 1, interleaved', async () => {
    const names = await servedBy(gw, '/wrr/x', 40);
    expect(tally(names)).toEqual({ w1: 30, w2: 10 });
    // Smooth: the light backend is never starved for more than three requests in a row.
    expect(names.join(',')).not.toMatch(/(w1,){4}/);
  });

  it('least-connections: while one backend holds a request, the other takes every new one', async () => {
    const hold = rawRequest(gw.url, '/lc/hold');
    await waitFor('the held request to reach a backend', () => held.length === 1);
    const busy = backends.find((backend) => backend.name.startsWith('l') && backend.requests.some((r) => r.url === '/lc/hold'))!;
    const names = await servedBy(gw, '/lc/x', 10);
    const idle = busy.name === 'l1' ? 'l2' : 'l1';
    expect(tally(names)).toEqual({ [idle]: 10 });
    held.shift()!.end('released');
    expect((await hold).body.toString()).toBe('released');
    // Both idle again: they share the traffic.
    expect(Object.keys(tally(await servedBy(gw, '/lc/x', 10))).sort()).toEqual(['l1', 'l2']);
  });

  it('ip-hash: one client always reaches the same backend, and clients spread over all of them', async () => {
    const clientOf = (i: number) => ({ 'x-forwarded-for': `203.0.113.${(i % 24) + 1}` });
    const names = await servedBy(gw, '/ih/x', 72, clientOf);
    const byClient = new Map<string, Set<string>>();
    names.forEach((name, i) => {
      const client = clientOf(i)['x-forwarded-for'];
      byClient.set(client, (byClient.get(client) ?? new Set()).add(name));
    });
    expect(byClient.size).toBe(24);
    for (const [client, served] of byClient) expect([client, served.size]).toEqual([client, 1]);
    expect(Object.keys(tally(names)).sort()).toEqual(['h1', 'h2', 'h3']);
  });

  it('random: both backends serve, in no fixed order', async () => {
    const names = await servedBy(gw, '/rnd/x', 100);
    const counts = tally(names);
    expect(Object.keys(counts).sort()).toEqual(['r1', 'r2']);
    expect(Math.min(counts.r1, counts.r2)).toBeGreaterThanOrEqual(20);
    // Round robin would alternate strictly; 100 random picks doing so has odds of 2^-99.
    const alternates = names.every((name, i) => i === 0 || name !== names[i - 1]);
    expect(alternates).toBe(false);
  });
});

describe('upstream health checks and circuit breakers (e2e)', () => {
  let hc1: TestBackend;
  let hc2: TestBackend;
  let cb1: TestBackend;
  let cb2: TestBackend;
  let cb3: TestBackend;
  let gw: TestApp;

  beforeAll(async () => {
    [hc1, hc2, cb1, cb2, cb3] = await Promise.all(['hc1', 'hc2', 'cb1', 'cb2', 'cb3'].map((name) => startBackend({ name })));
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        proxy: { retryBackoffMs: 1, retryBackoffCapMs: 2 },
        upstreams: {
          checked: {
            backends: [hc1, hc2].map((b) => ({ name: b.name, url: b.url })),
            healthCheck: { path: '/health', intervalSeconds: 1, timeoutSeconds: 1, unhealthyThreshold: 1, healthyThreshold: 1 },
            // Only the active checks decide here.
            circuitBreaker: { failureThreshold: 1000 },
          },
          breaking: {
            backends: [cb1, cb2, cb3].map((b) => ({ name: b.name, url: b.url })),
            circuitBreaker: { failureThreshold: 2, cooldownSeconds: 2 },
          },
        },
        routes: [
          { name: 'hc', path: '/hc/*', upstream: 'checked', auth: 'none' },
          { name: 'cb', path: '/cb/*', upstream: 'breaking', auth: 'none' },
        ],
      },
    });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([hc1, hc2, cb1, cb2, cb3].map((backend) => backend?.stop()));
  });

  it('health check: a backend that stops answering is ejected, and comes back when it answers again', async () => {
    expect(Object.keys(tally(await servedBy(gw, '/hc/x', 6))).sort()).toEqual(['hc1', 'hc2']);
    await hc2.stop();
    await waitFor('hc2 marked down', async () => (await metricValue(gw, 'gateway_backend_up', 'backend="hc2",pool="checked"')) === 0 && (await metricValue(gw, 'gateway_backend_up', 'backend="hc1",pool="checked"')) === 1);
    // Ejected: no request tries it any more (no connection failure counted against it).
    const failures = await metricValue(gw, 'gateway_upstream_failures_total', 'backend="hc2",kind="connect"');
    expect(tally(await servedBy(gw, '/hc/x', 10))).toEqual({ hc1: 10 });
    expect(await metricValue(gw, 'gateway_upstream_failures_total', 'backend="hc2",kind="connect"')).toBe(failures);

    hc2 = await restart(hc2);
    await waitFor('hc2 healthy again', async () => (await metricValue(gw, 'gateway_backend_up', 'backend="hc2",pool="checked"')) === 1);
    expect(tally(await servedBy(gw, '/hc/x', 10))).toEqual({ hc1: 5, hc2: 5 });
  });

  it('health check: a backend failing its check (503) is ejected without a request being sent to it', async () => {
    hc1.healthy = false;
    await waitFor('hc1 marked down', async () => (await metricValue(gw, 'gateway_backend_up', 'backend="hc1",pool="checked"')) === 0);
    const before = hc1.hits;
    expect(tally(await servedBy(gw, '/hc/x', 8))).toEqual({ hc2: 8 });
    expect(hc1.hits).toBe(before);
    hc1.healthy = true;
    await waitFor('hc1 healthy again', async () => (await metricValue(gw, 'gateway_backend_up', 'backend="hc1",pool="checked"')) === 1);
    expect(Object.keys(tally(await servedBy(gw, '/hc/x', 6))).sort()).toEqual(['hc1', 'hc2']);
  });

  it('circuit breaker: consecutive failures open the circuit, the cooldown lets one probe through, success closes it', async () => {
    const failuresOf = () => metricValue(gw, 'gateway_upstream_failures_total', 'backend="cb2",kind="connect"');
    await cb2.stop();
    // Failover hides the failures from clients while the circuit counts them.
    const during = await servedBy(gw, '/cb/x', 9);
    expect(during.every((name) => name === 'cb1' || name === 'cb3')).toBe(true);
    expect(await failuresOf()).toBe(2);
    expect(await metricValue(gw, 'gateway_circuit_state', 'backend="cb2"')).toBe(2);

    // Open: not even tried.
    expect(tally(await servedBy(gw, '/cb/x', 8))).toEqual({ cb1: 4, cb3: 4 });
    expect(await failuresOf()).toBe(2);

    cb2 = await restart(cb2);
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    await waitFor('cb2 serving again', async () => (await servedBy(gw, '/cb/x', 3)).includes('cb2'));
    expect(await metricValue(gw, 'gateway_circuit_state', 'backend="cb2"')).toBe(0);
    expect(tally(await servedBy(gw, '/cb/x', 9))).toEqual({ cb1: 3, cb2: 3, cb3: 3 });
  });
});

describe('upstream DNS discovery (e2e)', () => {
  let dns: DnsServer;
  let a2: TestBackend;
  let a3: TestBackend;
  let s1: TestBackend;
  let s2: TestBackend;
  let gw: TestApp;

  beforeAll(async () => {
    dns = await DnsServer.start();
    // Two hosts on one port, as the addresses of one DNS name are.
    a2 = await startBackend({ name: 'a2', host: '127.0.0.2' });
    a3 = await startBackend({ name: 'a3', host: '127.0.0.3', port: a2.port });
    [s1, s2] = await Promise.all([startBackend({ name: 's1' }), startBackend({ name: 's2' })]);
    dns.set('users.internal', { A: ['127.0.0.2'] });
    dns.set('_http._tcp.billing.internal', {
      SRV: [
        { priority: 10, weight: 1, port: s1.port, target: 's1.billing.internal' },
        { priority: 10, weight: 1, port: s2.port, target: 's2.billing.internal' },
      ],
    });
    dns.set('s1.billing.internal', { A: ['127.0.0.1'] });
    dns.set('s2.billing.internal', { A: ['127.0.0.1'] });
    dns.set('checked.internal', { A: ['127.0.0.2', '127.0.0.4'] });
    gw = await createTestApp({
      config: {
        ...HIGH_RATE_LIMIT_CONFIG,
        upstreams: {
          users: { discovery: { dns: 'users.internal', port: a2.port, intervalSeconds: 1, resolver: dns.address, timeoutMs: 200 } },
          billing: { discovery: { srv: '_http._tcp.billing.internal', intervalSeconds: 1, resolver: dns.address, timeoutMs: 200 } },
          // 127.0.0.4 has no server: its health checks fail.
          checked: {
            discovery: { dns: 'checked.internal', port: a2.port, intervalSeconds: 1, resolver: dns.address, timeoutMs: 200 },
            healthCheck: { path: '/health', intervalSeconds: 1, timeoutSeconds: 1, unhealthyThreshold: 1, healthyThreshold: 1 },
          },
        },
        routes: [
          { name: 'checked', path: '/checked/*', upstream: 'checked', auth: 'none' },
          { name: 'users', path: '/users/*', upstream: 'users', auth: 'none' },
          { name: 'billing', path: '/billing/*', upstream: 'billing', auth: 'none' },
        ],
      },
    });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.all([a2, a3, s1, s2].map((backend) => backend?.stop()));
    await dns?.close();
  });

  it('takes the backends from A records, follows a change, and keeps the last good set while DNS fails', async () => {
    await waitFor('the first discovered backend', async () => (await servedBy(gw, '/users/x', 1))[0] === 'a2');
    expect(tally(await servedBy(gw, '/users/x', 4))).toEqual({ a2: 4 });

    dns.set('users.internal', { A: ['127.0.0.2', '127.0.0.3'] });
    await waitFor('the second address to serve', async () => (await servedBy(gw, '/users/x', 2)).includes('a3'));
    expect(tally(await servedBy(gw, '/users/x', 6))).toEqual({ a2: 3, a3: 3 });

    for (const failure of ['servfail', 'silent'] as const) {
      dns.failure = failure;
      const asked = dns.count('A');
      await waitFor(`refreshes answered with ${failure}`, () => dns.count('A') >= asked + 2, 8_000);
      expect([failure, tally(await servedBy(gw, '/users/x', 6))]).toEqual([failure, { a2: 3, a3: 3 }]);
    }
    // An empty answer is not believed either (onEmpty: keep).
    dns.failure = undefined;
    dns.remove('users.internal');
    const asked = dns.count('A');
    await waitFor('refreshes answered NXDOMAIN', () => dns.count('A') >= asked + 2, 8_000);
    expect(tally(await servedBy(gw, '/users/x', 6))).toEqual({ a2: 3, a3: 3 });

    // DNS answers again, with one address: the other leaves.
    dns.set('users.internal', { A: ['127.0.0.3'] });
    await waitFor('a2 to leave', async () => (await servedBy(gw, '/users/x', 4)).every((name) => name === 'a3'));
  });

  it('takes targets and ports from SRV records', async () => {
    await waitFor('both SRV targets to serve', async () => Object.keys(tally(await servedBy(gw, '/billing/x', 4))).length === 2);
    expect(tally(await servedBy(gw, '/billing/x', 6))).toEqual({ s1: 3, s2: 3 });
    dns.set('_http._tcp.billing.internal', { SRV: [{ priority: 10, weight: 1, port: s2.port, target: 's2.billing.internal' }] });
    await waitFor('s1 to leave', async () => (await servedBy(gw, '/billing/x', 4)).every((name) => name === 's2'));
  });

  it('health-checks every discovered address: one that does not answer takes no traffic', async () => {
    const down = `backend="checked-127.0.0.4-${a2.port}",pool="checked"`;
    await waitFor('the silent address marked down', async () => (await metricValue(gw, 'gateway_backend_up', down)) === 0);
    expect(tally(await servedBy(gw, '/checked/x', 6))).toEqual({ a2: 6 });
    expect(await metricValue(gw, 'gateway_backend_up', `backend="checked-127.0.0.2-${a2.port}",pool="checked"`)).toBe(1);
  });
});
