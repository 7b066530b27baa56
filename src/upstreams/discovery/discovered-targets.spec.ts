import { makeTarget, normaliseTargets, priorityGroups, sameTargets, srvWeight, toBackendConfig } from './discovered-targets';

describe('discovered targets', () => {
  it('have stable ids and URLs, IPv6 in brackets', () => {
    expect(makeTarget('users', 'http', '10.0.0.5', 8080, 1)).toEqual({ id: 'users-10.0.0.5-8080', host: '10.0.0.5', port: 8080, weight: 1, url: 'http://10.0.0.5:8080' });
    expect(makeTarget('users', 'https', '2001:db8::1', 443, 3, 'a.internal')).toMatchObject({ id: 'users-2001:db8::1-443', url: 'https://[2001:db8::1]:443', target: 'a.internal' });
  });

  it('group SRV records by priority, most preferred first, dropping "no service" targets', () => {
    const groups = priorityGroups([
      { name: 'backup.internal', port: 1, priority: 20, weight: 1 },
      { name: 'a.internal', port: 1, priority: 10, weight: 5 },
      { name: '.', port: 1, priority: 5, weight: 1 },
      { name: 'b.internal', port: 2, priority: 10, weight: 0 },
    ]);
    expect(groups.map((group) => group.map((record) => record.name))).toEqual([['a.internal', 'b.internal'], ['backup.internal']]);
  });

  it('keep SRV weights as balancer weights, 0 becoming 1 (0 drains a backend)', () => {
    expect([srvWeight(0), srvWeight(1), srvWeight(65_535)]).toEqual([1, 1, 65_535]);
  });

  it('merge one address reached through two records and sort by id', () => {
    const merged = normaliseTargets([
      makeTarget('u', 'http', '10.0.0.2', 80, 2, 'b'),
      makeTarget('u', 'http', '10.0.0.1', 80, 1, 'a'),
      makeTarget('u', 'http', '10.0.0.2', 80, 3, 'c'),
    ]);
    expect(merged.map((t) => [t.id, t.weight])).toEqual([['u-10.0.0.1-80', 1], ['u-10.0.0.2-80', 5]]);
  });

  it('compare by id, weight and URL', () => {
    const a = normaliseTargets([makeTarget('u', 'http', '10.0.0.1', 80, 1)]);
    expect(sameTargets(a, normaliseTargets([makeTarget('u', 'http', '10.0.0.1', 80, 1, 'other-name')]))).toBe(true);
    expect(sameTargets(a, normaliseTargets([makeTarget('u', 'http', '10.0.0.1', 80, 2)]))).toBe(false);
    expect(sameTargets(a, [])).toBe(false);
  });

  it('become backend configs of the upstream pool', () => {
    expect(toBackendConfig(makeTarget('u', 'http', '10.0.0.1', 80, 4), 'u')).toEqual({ id: 'u-10.0.0.1-80', name: 'u-10.0.0.1-80', url: 'http://10.0.0.1:80', weight: 4, enabled: true, pool: 'u' });
  });
});
