import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { GatewayMetrics } from '../src/metrics/gateway-metrics.service';
import { TestApp, createTestApp } from './support/test-app';

const ROOT = join(__dirname, '..');
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const hasPromtool = promtool.status === 0;
if (!hasPromtool) {
  process.stderr.write(
    'observability-promtool: promtool is not installed, its checks are SKIPPED. Install it with\n' +
      '  apt-get install -y --no-install-recommends prometheus\n',
  );
}
const withPromtool = hasPromtool ? it : it.skip;
const PROM_CLIENT_DEFAULTS = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

function promtoolCheck(args: string[], input?: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', ...args], { cwd: ROOT, input, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('promtool', () => {
  let gw: TestApp;

  beforeAll(async () => {
    gw = await createTestApp({ config: { metrics: { perTenant: true } } });
  });
  afterAll(async () => {
    await gw.close();
  });

  withPromtool('accepts the live /metrics output, with every gateway metric present', async () => {
    // Give every labelled metric one series, as a running gateway would.
    const metrics = gw.app.get(GatewayMetrics);
    metrics.upstreamObserved('a', 0.01);
    metrics.backendState('a', 'imgproxy', true, 70);
    metrics.circuitState('a', 'closed');
    metrics.retried('a');
    metrics.circuitPanic('imgproxy', 'a');
    metrics.upstreamFailed('a', 'protocol');
    metrics.rateLimited('tenant');
    metrics.quotaExceeded('monthlyRequests');
    metrics.authFailed('invalid_key');
    metrics.ipDenied('deny_list');
    metrics.bytes('out', 10);
    metrics.requestLogDropped();
    metrics.storeError('postgres');
    metrics.cacheRequest('miss');
    metrics.cacheBytes('memory', 1024);
    metrics.cacheCoalesced();
    metrics.cacheEvicted('memory');
    await gw.fetch('/health/live');
    const text = await (await gw.fetch('/metrics')).text();
    for (const name of [
      'gateway_requests_total',
      'gateway_request_duration_seconds_bucket',
      'gateway_upstream_duration_seconds_bucket',
      'gateway_backend_up',
      'gateway_backend_weight',
      'gateway_circuit_state',
      'gateway_retries_total',
      'gateway_circuit_panic_total',
      'gateway_upstream_failures_total',
      'gateway_rate_limited_total',
      'gateway_quota_exceeded_total',
      'gateway_auth_failures_total',
      'gateway_ip_denied_total',
      'gateway_inflight_requests',
      'gateway_bytes_total',
      'gateway_request_log_dropped_total',
      'gateway_store_errors_total',
      'gateway_cache_requests_total',
      'gateway_cache_bytes',
      'gateway_cache_coalesced_total',
      'gateway_cache_evictions_total',
      'gateway_tenant_requests_total',
      'process_cpu_user_seconds_total',
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name.replace(/_bucket$/, '')} `, 'm'));
    }
    const { output } = promtoolCheck(['metrics'], text);
    expect(output).not.toMatch(/error while linting|parsing error/);
    // prom-client's own default metrics name three gauges *_total (upstream naming, not ours);
    // anything else promtool reports, gateway_* above all, fails the test.
    const findings = output.split('\n').filter((line) => line && !PROM_CLIENT_DEFAULTS.test(line));
    expect(findings).toEqual([]);
  });

  withPromtool('accepts the alert rules and their unit tests', () => {
    const rules = promtoolCheck(['rules', 'docker/prometheus/alerts.yml']);
    expect(rules.output).toMatch(/SUCCESS/);
    expect(rules.status).toBe(0);
    const tests = spawnSync('promtool', ['test', 'rules', 'docker/prometheus/alerts.test.yml'], { cwd: ROOT, encoding: 'utf8' });
    expect(`${tests.stdout}${tests.stderr}`).toMatch(/SUCCESS/);
    expect(tests.status).toBe(0);
  });
});
