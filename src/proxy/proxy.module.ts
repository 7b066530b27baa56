import { Module } from '@nestjs/common';
import { BackendsModule } from '../upstreams/backends/backends.module';
import { Forwarder } from './forwarder';
import { ProxyTerminal } from './proxy-terminal';
import { UpstreamClients } from './upstream-clients';

/**
 * The streaming forwarder every route ends in (docs/proxy-and-backends.md), registered with the
 * gateway as its terminal.
 */
@Module({
  imports: [BackendsModule],
  providers: [Forwarder, ProxyTerminal, UpstreamClients],
})
export class ProxyModule {}
