import { Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { GatewayMetrics } from './gateway-metrics.service';
import { MetricsController } from './metrics.controller';

// Registered once per process: prom-client's registry is global and default metrics may only
// be collected once, even when a test runs two gateway instances side by side.
const prometheus = PrometheusModule.register({
  path: '/metrics',
  controller: MetricsController,
  defaultMetrics: { enabled: true },
  global: true,
});

/** Global: every module records its events through GatewayMetrics. */
@Global()
@Module({
  imports: [prometheus],
  providers: [GatewayMetrics],
  exports: [prometheus, GatewayMetrics],
})
export class MetricsModule {}
