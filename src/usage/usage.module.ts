import { Global, Module } from '@nestjs/common';
import { UsageRepository } from './usage.repository';
import { UsageService } from './usage.service';

/**
 * Usage counters (Redis + PostgreSQL) and their flush job. Global: the rate limiter piggybacks the
 * counters' read on its round trip, the quota interceptor and the reports read them.
 */
@Global()
@Module({
  providers: [UsageRepository, UsageService],
  exports: [UsageService, UsageRepository],
})
export class UsageModule {}
