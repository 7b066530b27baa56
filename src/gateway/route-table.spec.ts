import type { Chain } from './chain';
import type { RouteSpec } from './route-spec';
import { allowedMethods } from './route-spec';
import { type CompiledRoute, RouteTable } from './route-table';

function route(name: string, path: string, methods: RouteSpec['methods']): CompiledRoute {
  const spec = { name, path, methods } as RouteSpec;
  return { spec, chain: {} as Chain, methods: new Set(allowedMethods(spec)), steps: [] };
}

describe('RouteTable', () => {
  const table = new RouteTable(
    [
      route('images', '/i/*', ['GET', 'HEAD']),
      route('user', '/api/users/:id', ['GET']),
      route('users-write', '/api/users/:id', ['PUT', 'DELETE']),
      route('static', '/api/users/me', ['GET']),
    ],
    1,
  );

  it('matches static before parametric before wildcard, with params', () => {
    const me = table.match('GET', '/api/users/me');
    expect(me.kind === 'route' && me.route.spec.name).toBe('static');
    const seven = table.match('GET', '/api/users/7');
    expect(seven.kind === 'route' && seven.route.spec.name).toBe('user');
    expect(seven.kind === 'route' && seven.params.id).toBe('7');
    const image = table.match('GET', '/i/insecure/plain/local:///a.png');
    expect(image.kind === 'route' && image.params['*']).toBe('insecure/plain/local:///a.png');
  });

  it('picks the route of a shared path by method, and answers 405 with every method of the path', () => {
    const write = table.match('DELETE', '/api/users/7');
    expect(write.kind === 'route' && write.route.spec.name).toBe('users-write');
    expect(table.match('POST', '/api/users/7')).toEqual({ kind: 'method-not-allowed', allow: 'GET, HEAD, PUT, DELETE' });
    expect(table.match('TRACE', '/i/x')).toEqual({ kind: 'method-not-allowed', allow: 'GET, HEAD' });
  });

  it('implies HEAD from GET and knows nothing of other paths', () => {
    expect(table.match('HEAD', '/api/users/7').kind).toBe('route');
    expect(table.match('GET', '/nowhere')).toEqual({ kind: 'none' });
    expect(table.match('GET', '/api/users')).toEqual({ kind: 'none' });
  });
});
