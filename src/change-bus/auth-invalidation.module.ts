import { Module } from '@nestjs/common';
import { AuthInvalidationService } from './auth-invalidation.service';

/**
 * Below plans, tenants, allowlists and keys: each of them publishes through it and the
 * caches listen to it, without a module cycle.
 */
@Module({
  providers: [AuthInvalidationService],
  exports: [AuthInvalidationService],
})
export class AuthInvalidationModule {}
