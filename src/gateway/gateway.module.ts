import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { GatewayService } from './gateway.service';
import { GatewayHttpEntry } from './http-entry';
import { PluginRegistry } from './plugin-registry';
import { RequestObserver } from './request-observer';

/**
 * The hot path's home: the route table, the catch-all entry, the registry plugins register in, and
 * the request observer whose one `close` listener per request runs the end-of-response hooks
 * (tracing, request logs and the request line subscribe to it). Global so that every plugin module
 * can register without a module import cycle.
 */
@Global()
@Module({
  imports: [DiscoveryModule],
  providers: [PluginRegistry, GatewayService, GatewayHttpEntry, RequestObserver],
  exports: [PluginRegistry, GatewayService, RequestObserver],
})
export class GatewayModule {}
