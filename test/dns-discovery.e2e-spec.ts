import { plainToInstance } from 'class-transformer';
import { BackendPool } from '../src/upstreams/backend-state/backend-pool';
import { DiscoveryConfig } from '../src/config/discovery.config';
import { toBackendConfig, type DiscoveredTarget } from '../src/upstreams/discovery/discovered-targets';
import { DnsDiscovery, type DiscoveryOutcome } from '../src/upstreams/discovery/dns-discovery';
import { DnsServer } from './support/dns-server';

jest.setTimeout(30_000);

/**
 * DNS discovery against a DNS server of the test's own (UDP on 127.0.0.1): the records change
 * between refreshes, and so must the upstream's backends, reported once per change.
 */
describe('DNS discovery (e2e)', () => {
  let dns: DnsServer;
  const running: DnsDiscovery[] = [];

  interface Probe {
    discovery: DnsDiscovery;
    /** Every set the callback received. */
    changes: (readonly DiscoveredTarget[])[];
    outcomes: DiscoveryOutcome[];
    warnings: string[];
  }

  function discover(plain: Record<string, unknown>, upstream = 'users'): Probe {
    const config = plainToInstance(DiscoveryConfig, { resolver: dns.address, timeoutMs: 100, ...plain }, { exposeDefaultValues: true });
    const changes: Probe['changes'] = [];
    const outcomes: DiscoveryOutcome[] = [];
    const warnings: string[] = [];
    const discovery = new DnsDiscovery({
      upstream,
      config,
      onChange: (targets) => changes.push(targets),
      onRefresh: (outcome) => outcomes.push(outcome),
      logger: { warn: (message: string) => warnings.push(message), log: () => undefined },
    });
    running.push(discovery);
    return { discovery, changes, outcomes, warnings };
  }

  const urls = (targets: readonly DiscoveredTarget[]) => targets.map((target) => target.url);

  beforeEach(async () => {
    dns = await DnsServer.start();
  });

  afterEach(async () => {
    for (const discovery of running.splice(0)) discovery.stop();
    await dns.close();
  });

  it('makes every A and AAAA address a backend on the configured port', async () => {
    dns.set('users.internal', { A: ['10.0.0.2', '10.0.0.1'], AAAA: ['2001:db8::1'] });
    const probe = discover({ dns: 'users.internal', port: 8080 });
    const targets = await probe.discovery.start();
    expect(targets).toEqual([
      { id: 'users-10.0.0.1-8080', host: '10.0.0.1', port: 8080, weight: 1, url: 'http://10.0.0.1:8080' },
      { id: 'users-10.0.0.2-8080', host: '10.0.0.2', port: 8080, weight: 1, url: 'http://10.0.0.2:8080' },
      { id: 'users-2001:db8::1-8080', host: '2001:db8::1', port: 8080, weight: 1, url: 'http://[2001:db8::1]:8080' },
    ]);
    expect(probe.changes).toEqual([targets]);
    expect(dns.count('A')).toBeGreaterThanOrEqual(1);
    expect(dns.count('AAAA')).toBeGreaterThanOrEqual(1);
  });

  it('reports the full new set only when it changed, with stable ids', async () => {
    dns.set('users.internal', { A: ['10.0.0.1', '10.0.0.2'] });
    const probe = discover({ dns: 'users.internal', port: 80 });
    await probe.discovery.start();
    expect(await probe.discovery.refresh()).toBe('unchanged');
    expect(probe.changes).toHaveLength(1);

    dns.set('users.internal', { A: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] });
    expect(await probe.discovery.refresh()).toBe('changed');
    dns.set('users.internal', { A: ['10.0.0.3', '10.0.0.1'] });
    expect(await probe.discovery.refresh()).toBe('changed');
    expect(probe.changes.map(urls)).toEqual([
      ['http://10.0.0.1:80', 'http://10.0.0.2:80'],
      ['http://10.0.0.1:80', 'http://10.0.0.2:80', 'http://10.0.0.3:80'],
      ['http://10.0.0.1:80', 'http://10.0.0.3:80'],
    ]);
    expect(probe.outcomes).toEqual(['changed', 'unchanged', 'changed', 'changed']);
    expect(probe.discovery.stats()).toMatchObject({ refreshes: 4, changes: 3, targets: 2, failures: 0 });
  });

  it('keeps the health of a backend that stays, through a refresh that adds and removes others', async () => {
    dns.set('users.internal', { A: ['10.0.0.1', '10.0.0.2'] });
    const pool = new BackendPool({ health: { healthyThreshold: 2, unhealthyThreshold: 1 }, circuit: { failureThreshold: 5, cooldownMs: 10_000 } });
    const probe = discover({ dns: 'users.internal', port: 80 });
    await probe.discovery.start();
    pool.replaceAll(probe.discovery.targets.map((target) => toBackendConfig(target, 'users')));
    pool.reportHealthCheck('users-10.0.0.1-80', false, 'connect refused');

    dns.set('users.internal', { A: ['10.0.0.1', '10.0.0.3'] });
    await probe.discovery.refresh();
    pool.replaceAll(probe.discovery.targets.map((target) => toBackendConfig(target, 'users')));
    expect(pool.snapshot().map(({ id, healthy }) => [id, healthy])).toEqual([
      ['users-10.0.0.1-80', false],
      ['users-10.0.0.3-80', true],
    ]);
  });

  it('keeps the last good set when DNS fails (SERVFAIL or no answer), logging once', async () => {
    dns.set('users.internal', { A: ['10.0.0.1'] });
    const probe = discover({ dns: 'users.internal', port: 80 });
    await probe.discovery.start();

    dns.set('users.internal', { A: ['10.0.0.9'] });
    dns.failure = 'servfail';
    expect(await probe.discovery.refresh()).toBe('failed');
    dns.failure = 'silent';
    expect(await probe.discovery.refresh()).toBe('failed');
    expect(await probe.discovery.refresh()).toBe('failed');
    expect(urls(probe.discovery.targets)).toEqual(['http://10.0.0.1:80']);
    expect(probe.changes).toHaveLength(1);
    expect(probe.warnings).toHaveLength(1);
    expect(probe.warnings[0]).toMatch(/ESERVFAIL.*keeping 1 backends/);
    expect(probe.discovery.stats()).toMatchObject({ failures: 3 });

    dns.failure = undefined;
    expect(await probe.discovery.refresh()).toBe('changed');
    expect(urls(probe.discovery.targets)).toEqual(['http://10.0.0.9:80']);
  });

  it('keeps the last good addresses of a family whose lookup fails while following the other', async () => {
    dns.set('users.internal', { A: ['10.0.0.1'], AAAA: ['2001:db8::1'] });
    const probe = discover({ dns: 'users.internal', port: 80 });
    await probe.discovery.start();
    dns.failingTypes.set('AAAA', 'servfail');
    dns.set('users.internal', { A: ['10.0.0.2'], AAAA: [] });
    expect(await probe.discovery.refresh()).toBe('partial');
    expect(urls(probe.discovery.targets)).toEqual(['http://10.0.0.2:80', 'http://[2001:db8::1]:80']);
  });

  it('keeps the set on an empty answer by default, and clears it with onEmpty: clear', async () => {
    dns.set('users.internal', { A: ['10.0.0.1'] });
    const keep = discover({ dns: 'users.internal', port: 80 });
    const clear = discover({ dns: 'users.internal', port: 80, onEmpty: 'clear' }, 'users-clear');
    await Promise.all([keep.discovery.start(), clear.discovery.start()]);

    dns.set('users.internal', {});
    expect(await keep.discovery.refresh()).toBe('empty');
    dns.remove('users.internal');
    expect(await keep.discovery.refresh()).toBe('empty');
    expect(urls(keep.discovery.targets)).toEqual(['http://10.0.0.1:80']);
    expect(keep.changes).toHaveLength(1);
    expect(keep.discovery.stats()).toMatchObject({ emptyAnswers: 2, failures: 0 });

    expect(await clear.discovery.refresh()).toBe('empty');
    expect(clear.changes.map(urls)).toEqual([['http://10.0.0.1:80'], []]);
  });

  it('takes SRV targets and ports from the lowest priority group, with their weights', async () => {
    dns.set('_http._tcp.users.internal', {
      SRV: [
        { priority: 10, weight: 5, port: 8081, target: 'a.users.internal' },
        { priority: 10, weight: 0, port: 8082, target: 'b.users.internal' },
        { priority: 20, weight: 1, port: 9090, target: 'backup.users.internal' },
      ],
    });
    dns.set('a.users.internal', { A: ['10.0.1.1'] });
    dns.set('b.users.internal', { A: ['10.0.1.2'], AAAA: ['2001:db8::2'] });
    dns.set('backup.users.internal', { A: ['10.0.2.1'] });
    const probe = discover({ srv: '_http._tcp.users.internal' });
    await probe.discovery.start();
    expect(probe.discovery.targets.map(({ url, weight, target }) => [url, weight, target])).toEqual([
      ['http://10.0.1.1:8081', 5, 'a.users.internal'],
      ['http://10.0.1.2:8082', 1, 'b.users.internal'],
      ['http://[2001:db8::2]:8082', 1, 'b.users.internal'],
    ]);

    // The preferred group no longer resolves: the next one serves.
    dns.remove('a.users.internal');
    dns.remove('b.users.internal');
    expect(await probe.discovery.refresh()).toBe('changed');
    expect(urls(probe.discovery.targets)).toEqual(['http://10.0.2.1:9090']);

    // A port or weight change in the records is a change of the set.
    dns.set('_http._tcp.users.internal', { SRV: [{ priority: 1, weight: 7, port: 9191, target: 'backup.users.internal' }] });
    expect(await probe.discovery.refresh()).toBe('changed');
    expect(probe.discovery.targets.map(({ id, weight }) => [id, weight])).toEqual([['users-10.0.2.1-9191', 7]]);
  });

  it('keeps the SRV set when the SRV lookup or every target lookup fails', async () => {
    dns.set('_http._tcp.users.internal', { SRV: [{ priority: 1, weight: 1, port: 80, target: 'a.users.internal' }] });
    dns.set('a.users.internal', { A: ['10.0.1.1'] });
    const probe = discover({ srv: '_http._tcp.users.internal' });
    await probe.discovery.start();
    dns.failingTypes.set('SRV', 'servfail');
    expect(await probe.discovery.refresh()).toBe('failed');
    dns.failingTypes.clear();
    dns.failingTypes.set('A', 'servfail');
    dns.failingTypes.set('AAAA', 'servfail');
    expect(await probe.discovery.refresh()).toBe('failed');
    expect(urls(probe.discovery.targets)).toEqual(['http://10.0.1.1:80']);
    expect(probe.changes).toHaveLength(1);
  });

  it('refreshes on its own every intervalSeconds', async () => {
    dns.set('users.internal', { A: ['10.0.0.1'] });
    const probe = discover({ dns: 'users.internal', port: 80, intervalSeconds: 1 });
    await probe.discovery.start();
    dns.set('users.internal', { A: ['10.0.0.7'] });
    const deadline = Date.now() + 5_000;
    while (probe.changes.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(probe.changes.map(urls)).toEqual([['http://10.0.0.1:80'], ['http://10.0.0.7:80']]);
  });
});
