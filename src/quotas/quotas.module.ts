import { Global, Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { TenantsModule } from '../tenants/tenants.module';
import { QuotaInterceptor } from './quota.interceptor';
import { QuotaService } from './quota.service';
import { UsageAdminController } from './usage-admin.controller';
import { UsageAdminService } from './usage-admin.service';
import { UsageController } from './usage.controller';
import { UsageExportController } from './usage-export.controller';

/**
 * Quotas (docs/rate-limits-and-quotas.md): the interceptor the proxy and uploads routes apply
 * (`@UseInterceptors(QuotaInterceptor)`), QuotaService (storage reservations for uploads) and the
 * usage APIs (tenant report and series, admin report, reset and billing export). Global so those
 * modules need not import it.
 */
@Global()
@Module({
  imports: [AuthModule, TenantsModule],
  controllers: [UsageController, UsageAdminController, UsageExportController],
  providers: [QuotaService, QuotaInterceptor, UsageAdminService],
  exports: [QuotaService, QuotaInterceptor],
})
export class QuotasModule {}
