import type { OutgoingHttpHeaders } from 'node:http';
import { DiscoveryService } from '@nestjs/core';
import type { GatewayException } from '../common/errors/gateway.exception';
import type { GatewayContext } from './context';
import type { RouteSpec } from './route-spec';

/** A step answered the request itself (a CORS preflight, a cache hit): the chain stops there. */
export const HANDLED = Symbol('handled');

/**
 * What an access step returns: nothing (go on), a refusal to answer with, or HANDLED. A promise
 * only when the step had to wait (a key lookup, the Redis call); a step that decides at once
 * returns synchronously and the chain goes on without a promise or a microtask.
 */
export type StepOutcome = undefined | GatewayException | typeof HANDLED;
export type AccessStep = (ctx: GatewayContext) => StepOutcome | Promise<StepOutcome>;

/**
 * Sees the response status and headers before they are written (proxied or from the cache), and
 * may change the headers: CORS, response header rules.
 */
export type ResponseStep = (ctx: GatewayContext, status: number, headers: OutgoingHttpHeaders) => void;

/** One plugin's work on one route, compiled once with its configuration resolved. */
export interface CompiledSteps {
  access?: AccessStep;
  response?: ResponseStep;
}

/**
 * A step of the request chain (Kong's plugin model): a name, a priority (higher runs first, as in
 * Kong) and a compiler that turns one route's configuration into ready-to-run steps. Compiling
 * happens when a route table is built (start, config reload), never per request: strings, bucket
 * templates and matchers are resolved there.
 */
export interface GatewayPlugin {
  readonly name: string;
  readonly priority: number;
  /** The route's steps, or undefined when the route does not use this plugin. */
  compile(route: RouteSpec): CompiledSteps | undefined;
}

/**
 * Marks a provider as a plugin of the chain: the registry finds every provider so marked when the
 * first route table is compiled, so a plugin needs no registration code of its own.
 */
export const ChainPlugin = DiscoveryService.createDecorator<void>();

/** Kong's priorities where Kong has the plugin, so the order reads the same. */
export const PRIORITY = {
  cors: 2000,
  jwtAuth: 1450,
  signedUrl: 1300,
  keyAuth: 1250,
  ipRestriction: 990,
  requestSize: 951,
  rateLimiting: 910,
  quota: 905,
  imgproxyRewrite: 850,
  transform: 800,
  proxyCache: 100,
} as const;
