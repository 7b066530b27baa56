import { Global, Module } from '@nestjs/common';
import { AdminAuthService } from './admin-auth.service';
import { AuditController } from './audit.controller';
import { RoutesAdminController } from './routes-admin.controller';

/**
 * Admin API authentication, shared by every `@AdminController` (their AdminTokenGuard) and the
 * health report, and the admin views of infrastructure with no module of their own to live in:
 * the audit log and the live route table. Global, so controller modules need not import it.
 */
@Global()
@Module({ controllers: [AuditController, RoutesAdminController], providers: [AdminAuthService], exports: [AdminAuthService] })
export class AdminModule {}
