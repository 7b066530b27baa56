import { GatewayConfig } from '../config/gateway-config';
import { devWorkerWanted } from './dev-worker';

function config(env: GatewayConfig['env'], backends: number): GatewayConfig {
  const c = new GatewayConfig();
  c.env = env;
  c.backends = Array.from({ length: backends }, (_, i) => ({ name: `b${i}`, url: 'http://127.0.0.1:1', weight: 1, enabled: true, pool: 'imgproxy' }));
  return c;
}

describe('devWorkerWanted', () => {
  it('runs the worker in development with no backend anywhere', () => {
    expect(devWorkerWanted(config('development', 0), false)).toBe(true);
  });

  it('not when a backend is configured (BACKENDS or YAML) or in the table', () => {
    expect(devWorkerWanted(config('development', 1), false)).toBe(false);
    expect(devWorkerWanted(config('development', 0), true)).toBe(false);
  });

  it('never in production, and in test only when asked for', () => {
    expect(devWorkerWanted(config('production', 0), false)).toBe(false);
    expect(devWorkerWanted(config('production', 0), false, { allowInTest: true })).toBe(false);
    expect(devWorkerWanted(config('test', 0), false)).toBe(false);
    expect(devWorkerWanted(config('test', 0), false, { allowInTest: true })).toBe(true);
  });
});
