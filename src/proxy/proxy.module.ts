import { Module } from '@nestjs/common';
import { BackendsModule } from '../backends/backends.module';
import { ProxyController } from './proxy.controller';
import { ProxyRoutes } from './proxy-routes';
import { ProxyService } from './proxy.service';
import { UpstreamClients } from './upstream-clients';

/** The streaming proxy (SPEC §7). Exports ProxyService and ProxyRoutes for the signed route. */
@Module({
  imports: [BackendsModule],
  controllers: [ProxyController],
  providers: [ProxyService, ProxyRoutes, UpstreamClients],
  exports: [ProxyService, ProxyRoutes],
})
export class ProxyModule {}
