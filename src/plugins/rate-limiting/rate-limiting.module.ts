import { Module } from '@nestjs/common';
import { RateLimitingPlugin } from './rate-limiting.plugin';

/** RateLimitGuard comes from the global rate-limit module. */
@Module({ providers: [RateLimitingPlugin] })
export class RateLimitingModule {}
