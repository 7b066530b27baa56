import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { BackendsModule } from '../backends/backends.module';
import { ImgproxyUrlModule } from '../imgproxy/imgproxy-url.module';
import { ProxyController } from './proxy.controller';
import { ProxyRoutes } from './proxy-routes';
import { ProxyService } from './proxy.service';
import { UpstreamClients } from './upstream-clients';

/** The streaming proxy (docs/proxy-and-backends.md). Exports ProxyService and ProxyRoutes for the signed route. */
@Module({
  // AuthModule for the guards of ProxyPipeline; rate limits and quotas are global modules.
  imports: [BackendsModule, AuthModule, ImgproxyUrlModule],
  controllers: [ProxyController],
  providers: [ProxyService, ProxyRoutes, UpstreamClients],
  exports: [ProxyService, ProxyRoutes],
})
export class ProxyModule {}
