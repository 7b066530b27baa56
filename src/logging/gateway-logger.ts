import type { LoggerService } from '@nestjs/common';
import { Logger as NestPinoLogger, type PinoLogger } from 'nestjs-pino';
import type { Logger as PinoInstance } from 'pino';

/**
 * Nest's own start-up chatter: one line per module initialised and per route mapped (about 90 on
 * this gateway). Useful when debugging the wiring, noise in every start's output, where it buried
 * the lines an operator needs (the admin token, the embedded-mode warnings, the listen address).
 */
const NEST_STARTUP_CONTEXTS = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication']);

/**
 * Nest's LoggerService over pino (nestjs-pino's adapter), with Nest's start-up lines moved from
 * info to debug. Nest passes the context as the last argument.
 */
export class GatewayLogger implements LoggerService {
  constructor(private readonly inner: LoggerService) {}

  /**
   * Before the application exists (main.ts): nestjs-pino's adapter, writing to `root` itself. It
   * only calls the level methods, which a pino instance has; going through PinoLogger instead would
   * bind the adapter to whichever pino instance PinoLogger saw first in the process.
   */
  static over(root: PinoInstance): GatewayLogger {
    return new GatewayLogger(new NestPinoLogger(root as unknown as PinoLogger, {}));
  }

  log(message: unknown, ...params: unknown[]): void {
    const context = params[params.length - 1];
    if (typeof context === 'string' && NEST_STARTUP_CONTEXTS.has(context)) this.inner.debug?.(message, ...params);
    else this.inner.log(message, ...params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.inner.error(message, ...params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.inner.warn(message, ...params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.inner.debug?.(message, ...params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.inner.verbose?.(message, ...params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.inner.fatal?.(message, ...params);
  }
}
