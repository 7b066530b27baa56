import { Module } from '@nestjs/common';
import { BackendsModule } from '../backends/backends.module';
import { Forwarder } from './forwarder';
import { ProxyRoutes } from './proxy-routes';
import { ProxyTerminal } from './proxy-terminal';
import { UpstreamClients } from './upstream-clients';

/**
 * The streaming forwarder every route ends in (docs/proxy-and-backends.md), registered with the
 * gateway as its terminal, and the streamed-body routes of the Nest side (uploads).
 */
@Module({
  imports: [BackendsModule],
  providers: [Forwarder, ProxyTerminal, ProxyRoutes, UpstreamClients],
  exports: [ProxyRoutes],
})
export class ProxyModule {}
