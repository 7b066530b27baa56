import { Global, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { GatewayConfig } from '../config/gateway-config';
import { PRE_AUTH_LIMITER } from '../pipeline/pre-auth-limiter';
import { AdmissionService } from './admission.service';
import { IpPreAuthLimiter } from './ip-pre-auth.limiter';
import { RateLimitGuard } from './rate-limit.guard';
import { TokenBucketThrottlerStorage } from './token-bucket-throttler.storage';

/** Holds the admission store and the throttler storage, so that ThrottlerModule's async options can receive it. */
@Module({ providers: [AdmissionService, TokenBucketThrottlerStorage], exports: [AdmissionService, TokenBucketThrottlerStorage] })
class RateLimitStorageModule {}

/**
 * Rate limits on @nestjs/throttler (docs/rate-limits-and-quotas.md). The throttler module gets our
 * token-bucket storage and one nominal throttler (the IP figure), which is what its own guard would
 * apply; the gateway's RateLimitGuard compiles each route's real limits and asks the admission
 * store. Global, so the proxy and uploads modules can `@UseGuards(ApiKeyGuard, RateLimitGuard)`,
 * the quota interceptor can settle and the auth guard can inject PRE_AUTH_LIMITER without
 * importing this module.
 */
@Global()
@Module({
  imports: [
    RateLimitStorageModule,
    ThrottlerModule.forRootAsync({
      imports: [RateLimitStorageModule],
      inject: [GatewayConfig, TokenBucketThrottlerStorage],
      useFactory: (config: GatewayConfig, storage: TokenBucketThrottlerStorage) => ({
        throttlers: [{ name: 'default', ttl: 60_000, limit: config.rateLimit.ip.perMinute ?? 100 }],
        storage,
      }),
    }),
  ],
  providers: [RateLimitGuard, IpPreAuthLimiter, { provide: PRE_AUTH_LIMITER, useExisting: IpPreAuthLimiter }],
  exports: [RateLimitStorageModule, RateLimitGuard, PRE_AUTH_LIMITER],
})
export class RateLimitModule {}
