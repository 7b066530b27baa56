import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BackendsModule } from '../upstreams/backends/backends.module';
import { HealthController } from './health.controller';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json', gracefulShutdownTimeoutMs: 0 }), BackendsModule],
  controllers: [HealthController],
})
export class HealthModule {}
