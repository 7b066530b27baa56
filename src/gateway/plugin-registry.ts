import { Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { ChainPlugin, type GatewayPlugin } from './plugin';
import type { RouteSpec } from './route-spec';
import type { Duplex } from 'node:stream';
import type { Terminal } from './chain';
import type { GatewayContext } from './context';

/** Builds a route's last step (the proxy to its upstream, the WebSocket pipe). */
export interface TerminalFactory {
  compile(route: RouteSpec): Terminal;
}

/** Pipes an admitted WebSocket upgrade to a backend of the route's upstream. */
export type UpgradeHandler = (ctx: GatewayContext, socket: Duplex, head: Buffer) => void;

/**
 * Where plugins are found: every provider marked `@ChainPlugin()`, collected once all modules
 * exist, and the terminal the proxy module sets. The gateway compiles routes from what is here,
 * so it imports no plugin and no plugin imports another.
 */
@Injectable()
export class PluginRegistry {
  private plugins?: Map<string, GatewayPlugin>;
  private terminalFactory?: TerminalFactory;
  private upgrade?: UpgradeHandler;

  constructor(private readonly discovery: DiscoveryService) {}

  setTerminal(factory: TerminalFactory): void {
    this.terminalFactory = factory;
  }

  setUpgradeHandler(handler: UpgradeHandler): void {
    this.upgrade = handler;
  }

  upgradeHandler(): UpgradeHandler {
    if (!this.upgrade) throw new Error('no WebSocket handler is registered');
    return this.upgrade;
  }

  /** Highest priority first (Kong's order); ties by name, so the order never depends on start-up. */
  ordered(): GatewayPlugin[] {
    return [...this.found().values()].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  }

  private found(): Map<string, GatewayPlugin> {
    if (this.plugins) return this.plugins;
    const plugins = new Map<string, GatewayPlugin>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: ChainPlugin.KEY })) {
      const plugin = wrapper.instance as GatewayPlugin | undefined;
      if (!plugin) continue;
      if (plugins.has(plugin.name)) throw new Error(`two plugins are named ${plugin.name}`);
      plugins.set(plugin.name, plugin);
    }
    return (this.plugins = plugins);
  }

  terminal(): TerminalFactory {
    if (!this.terminalFactory) throw new Error('no proxy terminal is registered');
    return this.terminalFactory;
  }
}
