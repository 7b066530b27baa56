import { Global, Module } from '@nestjs/common';
import { AdminAuthService } from './admin-auth.service';

/**
 * Admin API authentication, shared by every `@AdminController` (their AdminTokenGuard) and the
 * health report. Global, so controller modules need not import it.
 */
@Global()
@Module({ providers: [AdminAuthService], exports: [AdminAuthService] })
export class AdminModule {}
