import { Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { MetricsController } from './metrics.controller';

// Registered once per process: prom-client's registry is global and default metrics may only
// be collected once, even when a test runs two gateway instances side by side.
const prometheus = PrometheusModule.register({
  path: '/metrics',
  controller: MetricsController,
  defaultMetrics: { enabled: true },
  global: true,
});

@Global()
@Module({ imports: [prometheus], exports: [prometheus] })
export class MetricsModule {}
