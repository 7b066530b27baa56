import { Global, Module } from '@nestjs/common';
import { GatewayService } from './gateway.service';
import { GatewayHttpEntry } from './http-entry';
import { PluginRegistry } from './plugin-registry';
import { RoutesAdminController } from './routes-admin.controller';

/**
 * The hot path's home: the route table, the catch-all entry and the registry plugins register in.
 * Global so that every plugin module can register without a module import cycle.
 */
@Global()
@Module({
  controllers: [RoutesAdminController],
  providers: [PluginRegistry, GatewayService, GatewayHttpEntry],
  exports: [PluginRegistry, GatewayService],
})
export class GatewayModule {}
