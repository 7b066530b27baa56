import { GatewayConfig } from '../../config/gateway-config';
import type { BackendConfig } from '../backend-state/backend-pool';
import { BackendRegistry } from './backend-registry.service';

function backend(id: string, extra: Partial<BackendConfig> = {}): BackendConfig {
  return { id, name: id, url: `http://${id}:8080`, weight: 1, enabled: true, pool: 'imgproxy', ...extra };
}

describe('BackendRegistry', () => {
  let registry: BackendRegistry;

  beforeEach(() => {
    const config = new GatewayConfig();
    config.healthCheck.unhealthyThreshold = 1;
    registry = new BackendRegistry(config);
  });

  it('groups backends into one pool per name and drops emptied pools', () => {
    registry.replaceAll([backend('a'), backend('b', { pool: 'users' })]);
    expect(registry.pool('imgproxy')?.backends().map((b) => b.id)).toEqual(['a']);
    expect(registry.pool('users')?.backends().map((b) => b.id)).toEqual(['b']);
    registry.replaceAll([backend('a')]);
    expect(registry.pool('users')).toBeUndefined();
  });

  it('keeps the health of a backend across a reload', () => {
    registry.replaceAll([backend('a'), backend('b')]);
    expect(registry.reportHealthCheck(backend('a'), false, 'HTTP 503')).toBe('down');
    registry.replaceAll([backend('a', { weight: 50 }), backend('b')]);
    expect(registry.snapshot().find((s) => s.id === 'a')).toMatchObject({ healthy: false, weight: 50, lastError: 'HTTP 503' });
  });

  it('tells listeners about every change', () => {
    const seen: string[][] = [];
    registry.onChange((backends) => seen.push(backends.map((b) => b.id)));
    registry.replaceAll([backend('a')]);
    registry.replaceAll([]);
    expect(seen).toEqual([['a'], []]);
  });

  it('is ready with nothing configured, and unready when a serving pool has no healthy backend', () => {
    expect(registry.readiness()).toEqual({ serving: 0, unavailable: [] });
    registry.replaceAll([backend('a'), backend('off', { pool: 'spare', enabled: false })]);
    expect(registry.readiness()).toEqual({ serving: 1, unavailable: [] });
    registry.reportHealthCheck(backend('a'), false);
    expect(registry.readiness()).toEqual({ serving: 1, unavailable: ['imgproxy'] });
  });
});
