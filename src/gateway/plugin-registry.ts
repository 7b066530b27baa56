import { Injectable } from '@nestjs/common';
import type { GatewayPlugin } from './plugin';
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
 * Where plugins make themselves known: each plugin's module registers its plugin here when it
 * initialises, and the proxy module its terminal. The gateway compiles routes from what is
 * registered, so it imports no plugin and no plugin imports another.
 */
@Injectable()
export class PluginRegistry {
  private readonly plugins = new Map<string, GatewayPlugin>();
  private terminalFactory?: TerminalFactory;
  private upgrade?: UpgradeHandler;

  register(plugin: GatewayPlugin): void {
    if (this.plugins.has(plugin.name)) throw new Error(`plugin ${plugin.name} registered twice`);
    this.plugins.set(plugin.name, plugin);
  }

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
    return [...this.plugins.values()].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  }

  terminal(): TerminalFactory {
    if (!this.terminalFactory) throw new Error('no proxy terminal is registered');
    return this.terminalFactory;
  }
}
