import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { DiscoveryConfig, parseResolverList } from './discovery.config';

function problems(plain: Record<string, unknown>): string[] {
  const config = plainToInstance(DiscoveryConfig, plain, { exposeDefaultValues: true });
  return validateSync(config, { whitelist: true, forbidNonWhitelisted: true }).flatMap((error) =>
    Object.values(error.constraints ?? {}).map((message) => `${error.property}: ${message}`),
  );
}

describe('DiscoveryConfig', () => {
  it('takes dns with a port, or srv alone, with defaults', () => {
    expect(problems({ dns: 'users.internal', port: 8080 })).toEqual([]);
    expect(problems({ srv: '_http._tcp.users.internal', intervalSeconds: 5, resolver: '127.0.0.1:5353' })).toEqual([]);
    expect(plainToInstance(DiscoveryConfig, { dns: 'a.b', port: 1 }, { exposeDefaultValues: true })).toMatchObject({
      intervalSeconds: 10,
      timeoutMs: 2000,
      scheme: 'http',
      onEmpty: 'keep',
    });
  });

  it('wants exactly one of dns and srv', () => {
    expect(problems({})).toContain('dns: exactly one of dns and srv must be set');
    expect(problems({ dns: 'a.internal', port: 80, srv: '_http._tcp.a.internal' })).toContain('dns: exactly one of dns and srv must be set');
  });

  it('wants a port with dns, and none with srv', () => {
    expect(problems({ dns: 'users.internal' })).toContain('port: port is required with dns');
    expect(problems({ srv: '_http._tcp.users.internal', port: 80 })).toContain('port: port must not be set with srv (SRV records carry the ports)');
    expect(problems({ dns: 'users.internal', port: 70_000 })).toContain('port: port must not be greater than 65535');
  });

  it('refuses names that are not DNS names and SRV names without service and protocol', () => {
    expect(problems({ dns: 'http://users', port: 80 })).toContain('dns: must be a DNS name');
    expect(problems({ srv: 'users.internal' })).toContain('srv: must be an SRV name like _http._tcp.users.internal');
  });

  it('takes resolver addresses with optional ports only', () => {
    expect(parseResolverList('127.0.0.1:5353, 10.0.0.2,[::1]:53,2001:db8::53')).toEqual({ servers: ['127.0.0.1:5353', '10.0.0.2', '[::1]:53', '2001:db8::53'] });
    for (const bad of ['', 'dns.internal', '127.0.0.1:0', '127.0.0.1:99999', '[127.0.0.1]:53']) {
      expect([bad, 'problem' in parseResolverList(bad)]).toEqual([bad, true]);
    }
    expect(problems({ dns: 'a.internal', port: 80, resolver: 'dns.internal:53' })[0]).toMatch(/^resolver: resolver "dns.internal:53" must be an IP address/);
  });
});
