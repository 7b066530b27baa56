/**
 * One table of rate-limit scenarios run against every store of the admission policies
 * (docs/rate-limits-and-quotas.md): `local` (in process), `redis` (one server, one atomic script)
 * and `cluster` (a real 3-master Redis Cluster, one script per hash slot plus refunds). Each store
 * gets two "instances" where it can (two clients sharing the store), and the three must decide the
 * same random sequence identically. Keys live under prefixes unique to the run.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SchedulerRegistry } from '@nestjs/schedule';
import Redis, { Cluster } from 'ioredis';
import type { AuthContext, EffectiveLimits } from '../src/common/http/request-context';
import { GatewayConfig } from '../src/config/gateway-config';
import { CompiledRoute, type PlanContext } from '../src/rate-limit/admission-plan';
import type { RouteLimitsSpec, WindowLimits } from '../src/rate-limit/admission.types';
import type { AdmissionPolicy, PolicyDecision } from '../src/rate-limit/policies/admission-policy';
import { ClusterAdmissionPolicy } from '../src/rate-limit/policies/cluster.policy';
import { LocalAdmissionPolicy } from '../src/rate-limit/policies/local.policy';
import { RedisAdmissionPolicy } from '../src/rate-limit/policies/redis.policy';
import type { RedisService } from '../src/redis/redis.service';
import type { UsageRepository } from '../src/usage/usage.repository';
import { UsageService } from '../src/usage/usage.service';
import { usagePeriodOf } from '../src/usage/usage-period';
import { OwnRedisCluster } from './support/redis-topologies';
import { TEST_REDIS_URL } from './support/test-env';

/** These scenarios check buckets only: the usage service is never asked for a month view. */
function bucketsOnlyUsage(): UsageService {
  const withoutRedis = { client: undefined, ready: false, prefix: '' } as unknown as RedisService;
  return new UsageService(withoutRedis, {} as UsageRepository, new GatewayConfig(), new SchedulerRegistry());
}

interface Store {
  readonly name: string;
  /** Two instances of the gateway sharing the store (the same one for `local`). */
  readonly instances: readonly [AdmissionPolicy, AdmissionPolicy];
  readonly context: PlanContext;
}

let run = 0;
const prefix = () => `igw-test-pol-${randomBytes(4).toString('hex')}-${++run}:`;

const tenantAuth = (tenantId: string, limits: Partial<EffectiveLimits>): AuthContext => ({
  tenantId,
  tenantName: tenantId,
  scopes: ['images:read'],
  via: 'api-key',
  limits: { perMinute: 1000, perHour: 1000, monthlyRequests: 1e9, monthlyBandwidthBytes: 1e15, storageBytes: 1e12, ...limits },
  allowedSources: [],
  allowUnsignedUrls: false,
});

function route(store: Store, name: string, capacity?: WindowLimits, perCaller?: WindowLimits): CompiledRoute {
  const spec: RouteLimitsSpec = { routeName: name, capacity, perCaller, policy: 'exact', countsTowardQuota: false };
  return new CompiledRoute(spec, store.context);
}

async function decide(policy: AdmissionPolicy, compiled: CompiledRoute, auth: AuthContext, clientIp = '192.0.2.1'): Promise<PolicyDecision> {
  return policy.admit(compiled.planFor({ clientIp, auth }), usagePeriodOf(new Date()));
}

async function admittedOf(policy: AdmissionPolicy, compiled: CompiledRoute, auth: AuthContext, attempts: number): Promise<number> {
  let admitted = 0;
  for (let i = 0; i < attempts; i++) if ((await decide(policy, compiled, auth)).rate?.allowed) admitted++;
  return admitted;
}

describe.each(['local', 'redis', 'cluster'] as const)('rate-limit scenarios on the %s store', (kind) => {
  let store: Store;
  let cluster: OwnRedisCluster | undefined;
  const clients: (Redis | Cluster)[] = [];
  let testId = 0;
  const id = (what: string) => `${what}-${++testId}`;

  beforeAll(async () => {
    const usage = bucketsOnlyUsage();
    const keyPrefix = prefix();
    if (kind === 'local') {
      const local = new LocalAdmissionPolicy(usage, false);
      store = { name: kind, instances: [local, local], context: { keyPrefix, cluster: false, enabled: true, ip: { perMinute: 100 } } };
      return;
    }
    if (kind === 'redis') {
      clients.push(new Redis(TEST_REDIS_URL), new Redis(TEST_REDIS_URL));
      store = {
        name: kind,
        instances: [new RedisAdmissionPolicy(clients[0], usage), new RedisAdmissionPolicy(clients[1], usage)],
        context: { keyPrefix, cluster: false, enabled: true, ip: { perMinute: 100 } },
      };
      return;
    }
    cluster = await OwnRedisCluster.start(3);
    const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
    clients.push(new Cluster(nodes), new Cluster(nodes));
    store = {
      name: kind,
      instances: [new ClusterAdmissionPolicy(clients[0] as Cluster, usage), new ClusterAdmissionPolicy(clients[1] as Cluster, usage)],
      context: { keyPrefix, cluster: true, enabled: true, ip: { perMinute: 100 } },
    };
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  it('admits a full burst at once, then refuses naming the tenant with a Retry-After', async () => {
    const api = route(store, 'api');
    const auth = tenantAuth(id('t'), { perMinute: 10 });
    expect(await admittedOf(store.instances[0], api, auth, 10)).toBe(10);
    const refused = await decide(store.instances[1], api, auth);
    expect(refused.rate).toMatchObject({ allowed: false, deniedScope: 'tenant', retryAfterSeconds: 6 });
    expect(refused.rate!.results.map((r) => r.remaining)).toEqual([0, 990]);
  });

  it('admits exactly the limit when 50 requests race through two instances', async () => {
    const api = route(store, 'api');
    const auth = tenantAuth(id('t'), { perMinute: 30 });
    const decisions = await Promise.all(Array.from({ length: 50 }, (_, i) => decide(store.instances[i % 2], api, auth)));
    const admitted = decisions.filter((d) => d.rate?.allowed);
    expect(admitted).toHaveLength(30);
    // Each admitted request saw its own token: remaining counts down without a repeat.
    expect(admitted.map((d) => d.rate!.results[0].remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('consumes from no bucket when one bucket of the request refuses (tenant, route per caller, capacity)', async () => {
    const name = id('r');
    const capped = route(store, name, { perMinute: 3 }, { perMinute: 2 });
    const first = tenantAuth(id('t'), { perMinute: 5 });
    const second = tenantAuth(id('t'), { perMinute: 5 });
    expect(await admittedOf(store.instances[0], capped, first, 2)).toBe(2);
    // The tenant's share of the route is spent: refused by scope `route`, nothing else taken.
    const perCaller = await decide(store.instances[1], capped, first);
    expect(perCaller.rate).toMatchObject({ allowed: false, deniedScope: 'route' });
    expect(perCaller.rate!.results.map((r) => r.remaining)).toEqual([3, 998, 0, 1]);
    // One capacity token is left for another tenant, then the route is full for everyone.
    expect((await decide(store.instances[1], capped, second)).rate?.allowed).toBe(true);
    const full = await decide(store.instances[0], capped, second);
    expect(full.rate).toMatchObject({ allowed: false, deniedScope: 'capacity' });
    // The refused requests took nothing: the second tenant's own buckets still hold 4 and 1.
    expect(full.rate!.results.map((r) => r.remaining)).toEqual([4, 999, 1, 0]);
  });

  it('refills continuously on the store clock', async () => {
    const api = route(store, 'api');
    const auth = tenantAuth(id('t'), { perMinute: 120, burst: 2 });
    expect(await admittedOf(store.instances[0], api, auth, 3)).toBe(2);
    await sleep(700); // one token every 500 ms
    expect(await admittedOf(store.instances[1], api, auth, 3)).toBe(1);
  });

  it('keeps a per-IP bucket of an open route apart from every other address', async () => {
    const open = route(store, id('open'));
    const plan = (ip: string) => open.planFor({ clientIp: ip });
    const period = usagePeriodOf(new Date());
    const decisions: boolean[] = [];
    for (let i = 0; i < 101; i++) decisions.push((await store.instances[i % 2].admit(plan('198.51.100.7'), period)).rate!.allowed);
    expect(decisions.filter(Boolean)).toHaveLength(100);
    expect((await store.instances[0].admit(plan('198.51.100.8'), period)).rate!.allowed).toBe(true);
  });

  if (kind === 'cluster') {
    it('stays exact under concurrency across slots and refunds every refused request', async () => {
      const name = id('r');
      // Room in the route for the whole burst: only the tenant refuses, so the outcome is exact.
      const capped = route(store, name, { perHour: 60 });
      const auth = tenantAuth(id('t'), { perMinute: 30 });
      const decisions = await Promise.all(Array.from({ length: 50 }, (_, i) => decide(store.instances[i % 2], capped, auth)));
      expect(decisions.filter((d) => d.rate?.allowed)).toHaveLength(30);
      // 30 admitted took 30 of the route's 60; the 20 refused gave theirs back.
      const other = tenantAuth(id('t'), { perMinute: 100 });
      expect(await admittedOf(store.instances[0], capped, other, 32)).toBe(30);
    });
  }
});

describe('the three stores decide alike', () => {
  let cluster: OwnRedisCluster;
  const clients: (Redis | Cluster)[] = [];

  beforeAll(async () => {
    cluster = await OwnRedisCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await cluster.stop();
  });

  it('admits and refuses the same random sequence on local, redis and cluster', async () => {
    const usage = bucketsOnlyUsage();
    const redis = new Redis(TEST_REDIS_URL);
    const onCluster = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    clients.push(redis, onCluster);
    const local = new LocalAdmissionPolicy(usage, false);
    const stores: Store[] = [
      { name: 'local', instances: [local, local], context: { keyPrefix: prefix(), cluster: false, enabled: true, ip: { perMinute: 20 } } },
      { name: 'redis', instances: [new RedisAdmissionPolicy(redis, usage), new RedisAdmissionPolicy(redis, usage)], context: { keyPrefix: prefix(), cluster: false, enabled: true, ip: { perMinute: 20 } } },
      {
        name: 'cluster',
        instances: [new ClusterAdmissionPolicy(onCluster, usage), new ClusterAdmissionPolicy(onCluster, usage)],
        context: { keyPrefix: prefix(), cluster: true, enabled: true, ip: { perMinute: 20 } },
      },
    ];
    // Rates whose refills, over the pause below, land far from a token boundary (1.4 tokens at 20/min,
    // 0.4 at 6/min, 0.3 at 4/min), and refill next to nothing while the sequence runs.
    const tenants = [tenantAuth('p-a', { perMinute: 6, perHour: 14 }), tenantAuth('p-b', { perMinute: 20, perHour: 30, burst: 5 })];
    const routes = stores.map((store) => [route(store, 'p-api'), route(store, 'p-img', { perHour: 25 }, { perMinute: 4 }), route(store, 'p-open')]);
    let seed = 20240601;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const sequences: unknown[][] = stores.map(() => []);
    for (let step = 0; step < 90; step++) {
      if (step === 45) await sleep(4250);
      const r = random(3);
      const t = random(2);
      for (const [s, store] of stores.entries()) {
        const compiled = routes[s][r];
        const plan = r === 2 ? compiled.planFor({ clientIp: '203.0.113.9' }) : compiled.planFor({ clientIp: '203.0.113.9', auth: tenants[t] });
        const decision = await store.instances[step % 2].admit(plan, usagePeriodOf(new Date()));
        sequences[s].push({ allowed: decision.rate!.allowed, scope: decision.rate!.deniedScope, remaining: decision.rate!.results.map((x) => x.remaining) });
      }
    }
    expect(sequences[1]).toEqual(sequences[0]);
    expect(sequences[2]).toEqual(sequences[0]);
    const allowed = sequences[0].map((entry) => (entry as { allowed: boolean }).allowed);
    // Not vacuous: the sequence both admits and refuses.
    expect(allowed.filter(Boolean).length).toBeGreaterThan(10);
    expect(allowed.filter((a) => !a).length).toBeGreaterThan(10);
  }, 60_000);
});
