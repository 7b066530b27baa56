import { Writable } from 'node:stream';
import { Logger } from '@nestjs/common';
import pino from 'pino';
import { GatewayLogger } from './gateway-logger';

function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, logger: GatewayLogger.over(pino({ level }, stream)) };
}

describe('GatewayLogger', () => {
  afterEach(() => Logger.overrideLogger(false));

  it("moves Nest's module and route lines to debug and keeps the gateway's own at info", () => {
    const { lines, logger } = capture('info');
    logger.log('AppModule dependencies initialized', 'InstanceLoader');
    logger.log('Mapped {/health/live, GET} route', 'RouterExplorer');
    logger.log('HealthController {/health}:', 'RoutesResolver');
    logger.log('listening', 'Bootstrap');
    logger.warn('careful', 'RedisService');
    expect(lines.map((l) => [l.level, l.context, l.msg])).toEqual([
      [30, 'Bootstrap', 'listening'],
      [40, 'RedisService', 'careful'],
    ]);
  });

  it('still shows them at debug, in the same shape as every other line', () => {
    const { lines, logger } = capture('debug');
    Logger.overrideLogger(logger);
    new Logger('RouterExplorer').log('Mapped {/health/live, GET} route');
    new Logger('Bootstrap').log('listening');
    expect(lines).toEqual([
      expect.objectContaining({ level: 20, context: 'RouterExplorer', msg: 'Mapped {/health/live, GET} route', pid: expect.any(Number), time: expect.any(Number) }),
      expect.objectContaining({ level: 30, context: 'Bootstrap', msg: 'listening' }),
    ]);
  });
});
