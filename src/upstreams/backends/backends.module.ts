import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BackendEntity } from './backend.entity';
import { BackendProber } from './backend-prober.service';
import { BackendRegistry } from './backend-registry.service';
import { BackendRepository } from './backend.repository';
import { BackendsController } from './backends.controller';
import { BackendsHealthIndicator } from './backends.health';
import { BackendsService } from './backends.service';

/**
 * Backends at run time (docs/proxy-and-backends.md): the table, its admin API, the in-memory registry the proxy
 * chooses from, and the active health checks that feed it.
 */
@Module({
  imports: [TypeOrmModule.forFeature([BackendEntity]), TerminusModule],
  controllers: [BackendsController],
  providers: [BackendRepository, BackendRegistry, BackendsService, BackendProber, BackendsHealthIndicator],
  exports: [BackendRegistry, BackendsHealthIndicator],
})
export class BackendsModule {}
