import { DynamicModule, Inject, Injectable, Module, OnModuleInit } from '@nestjs/common';
import { Logger, LoggerModule } from 'nestjs-pino';
import type { Logger as PinoInstance } from 'pino';
import { GatewayConfig } from '../config/gateway-config';
import { RequestObserver } from '../gateway/request-observer';
import { GatewayLogger } from './gateway-logger';
import { RequestLineLogger, createRootLogger, loggingOptions } from './logging.options';
import { UrlRedactor } from './url-redaction';

const ROOT_LOGGER = Symbol('ROOT_LOGGER');

/** Hangs the request line on the observer that already sees every request end. */
@Injectable()
class RequestLineSubscription implements OnModuleInit {
  constructor(
    @Inject(ROOT_LOGGER) private readonly logger: PinoInstance,
    private readonly observer: RequestObserver,
    private readonly config: GatewayConfig,
  ) {}

  onModuleInit(): void {
    this.observer.subscribe(new RequestLineLogger(this.logger, UrlRedactor.forConfig(this.config)));
  }
}

/**
 * JSON logs (docs/observability.md): Nest's Logger backed by pino through nestjs-pino (GatewayLogger,
 * with Nest's start-up lines at debug), and one line per request written from the RequestObserver
 * (no HTTP middleware, no per-request logger).
 */
@Module({})
export class LoggingModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    const logger = createRootLogger(config);
    return {
      module: LoggingModule,
      imports: [LoggerModule.forRoot(loggingOptions(logger))],
      providers: [
        { provide: ROOT_LOGGER, useValue: logger },
        { provide: GatewayLogger, useFactory: (pinoLogger: Logger) => new GatewayLogger(pinoLogger), inject: [Logger] },
        RequestLineSubscription,
      ],
      exports: [GatewayLogger],
    };
  }
}
