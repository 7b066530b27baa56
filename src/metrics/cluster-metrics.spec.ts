import { AggregatorRegistry, Registry } from 'prom-client';
import { GatewayConfig } from '../config/gateway-config';
import { ClusterMetrics } from './cluster-metrics';
import { GatewayMetrics } from './gateway-metrics.service';

/** One worker's registry with the gateway's metrics, as a worker answers the primary (JSON). */
function worker(record: (metrics: GatewayMetrics) => void) {
  const registry = new Registry();
  record(new GatewayMetrics(new GatewayConfig(), registry));
  return registry.getMetricsAsJSON();
}

function line(text: string, prefix: string): string | undefined {
  return text.split('\n').find((l) => l.startsWith(prefix));
}

describe('merged metrics of several workers', () => {
  it('sums request counters and histograms across workers', async () => {
    const a = await worker((m) => {
      m.requestObserved('/i/*', 'GET', 200, 0.004);
      m.requestObserved('/i/*', 'GET', 200, 0.02);
    });
    const b = await worker((m) => m.requestObserved('/i/*', 'GET', 200, 0.004));
    const text = await AggregatorRegistry.aggregate([a, b]).metrics();
    expect(line(text, 'gateway_requests_total{')).toBe('gateway_requests_total{route="/i/*",method="GET",status="200"} 3');
    expect(line(text, 'gateway_request_duration_seconds_bucket{le="0.005"')).toBe(
      'gateway_request_duration_seconds_bucket{le="0.005",route="/i/*",method="GET",status="200"} 2',
    );
  });

  it('shows a backend down when any worker sees it down, and the most open circuit', async () => {
    const a = await worker((m) => {
      m.backendState('a', 'imgproxy', true, 10);
      m.circuitState('a', 'closed');
    });
    const b = await worker((m) => {
      m.backendState('a', 'imgproxy', false, 10);
      m.circuitState('a', 'open');
    });
    const text = await AggregatorRegistry.aggregate([a, b]).metrics();
    expect(line(text, 'gateway_backend_up{')).toBe('gateway_backend_up{backend="a",pool="imgproxy"} 0');
    expect(line(text, 'gateway_backend_weight{')).toBe('gateway_backend_weight{backend="a",pool="imgproxy"} 10');
    expect(line(text, 'gateway_circuit_state{')).toBe('gateway_circuit_state{backend="a"} 2');
  });

  it('adds the primary own metrics, and still answers when no worker is listening', async () => {
    const metrics = new ClusterMetrics();
    metrics.workersListening(2);
    metrics.workerRestarted();
    const text = await metrics.merge([]);
    expect(line(text, 'gateway_cluster_workers ')).toBe('gateway_cluster_workers 2');
    expect(line(text, 'gateway_cluster_worker_restarts_total ')).toBe('gateway_cluster_worker_restarts_total 1');
  });
});
