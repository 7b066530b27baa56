import { Registry } from 'prom-client';
import { GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from './gateway-metrics.service';

function config(perTenant: boolean): GatewayConfig {
  const c = new GatewayConfig();
  c.metrics.perTenant = perTenant;
  return c;
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  const values = (await metric?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l) && Object.keys(v.labels).length === Object.keys(labels).length)?.value;
}

describe('GatewayMetrics', () => {
  it('shares one set of metrics between two instances on one registry (two apps in one process)', async () => {
    const registry = new Registry();
    const a = new GatewayMetrics(config(false), registry);
    const b = new GatewayMetrics(config(false), registry);
    a.rateLimited('ip');
    b.rateLimited('ip');
    expect(await value(registry, 'gateway_rate_limited_total', { scope: 'ip' })).toBe(2);
  });

  it('encodes circuit states as 0 closed, 1 half-open, 2 open', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(config(false), registry);
    const states = [] as (number | undefined)[];
    for (const state of ['closed', 'half-open', 'open'] as const) {
      metrics.circuitState('a', state);
      states.push(await value(registry, 'gateway_circuit_state', { backend: 'a' }));
    }
    expect(states).toEqual([0, 1, 2]);
  });

  it('counts tenants only when metrics.perTenant is on', async () => {
    const off = new Registry();
    new GatewayMetrics(config(false), off).requestObserved('/i/*', 'GET', 200, 0.01, 'tenant-1');
    expect(off.getSingleMetric('gateway_tenant_requests_total')).toBeUndefined();
    expect(await value(off, 'gateway_requests_total', { route: '/i/*', method: 'GET', status: '200' })).toBe(1);
    const on = new Registry();
    new GatewayMetrics(config(true), on).requestObserved('/i/*', 'GET', 200, 0.01, 'tenant-1');
    expect(await value(on, 'gateway_tenant_requests_total', { tenant: 'tenant-1' })).toBe(1);
  });

  it('keeps the in-flight gauge balanced and ignores empty byte counts', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(config(false), registry);
    metrics.requestStarted();
    metrics.requestStarted();
    metrics.requestEnded();
    expect(await value(registry, 'gateway_inflight_requests')).toBe(1);
    metrics.bytes('in', 0);
    metrics.bytes('out', 42);
    expect(await value(registry, 'gateway_bytes_total', { direction: 'in' })).toBeUndefined();
    expect(await value(registry, 'gateway_bytes_total', { direction: 'out' })).toBe(42);
  });
});
