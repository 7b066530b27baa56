import type { RouteSpec } from '../gateway/route-spec';
import { forwardPlan, stripPrefix } from './proxy-terminal';

describe('stripPrefix', () => {
  it('removes the prefix and keeps the rest of the path and the query', () => {
    expect(stripPrefix('/api/users/7?x=1', '/api')).toBe('/users/7?x=1');
    expect(stripPrefix('/api', '/api')).toBe('/');
    expect(stripPrefix('/api?x', '/api')).toBe('/?x');
  });

  it('refuses a URL that only matched through an encoded or longer segment', () => {
    expect(stripPrefix('/%61pi/users', '/api')).toBeUndefined();
    expect(stripPrefix('/apiary/x', '/api')).toBeUndefined();
  });
});

describe('forwardPlan', () => {
  const base = { kind: 'proxy', upstream: 'users', retries: 1, maxBodyBytes: 10, auth: 'api-key' } as unknown as RouteSpec;

  it('forwards cookies to an application but never the credential the gateway consumed', () => {
    const plan = forwardPlan(base);
    expect([...plan.keep]).toEqual(['cookie', 'x-api-key'].filter((h) => h !== 'x-api-key'));
    expect(plan.strip.has('x-gateway-tenant')).toBe(true);
    expect([...forwardPlan({ ...base, auth: 'none' }).keep].sort()).toEqual(['authorization', 'cookie', 'x-api-key']);
    expect([...forwardPlan({ ...base, kind: 'image-header' } as RouteSpec).keep]).toEqual([]);
  });

  it('compiles the route’s request header rules', () => {
    const plan = forwardPlan({ ...base, headers: { request: { set: { 'X-Gateway': 'igw' }, remove: ['X-Internal'] } } } as RouteSpec);
    expect(plan.set).toEqual({ 'x-gateway': 'igw' });
    expect(plan.strip.has('x-internal')).toBe(true);
  });
});
