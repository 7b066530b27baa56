import { Module } from '@nestjs/common';
import { QuotaPlugin } from './quota.plugin';

/** QuotaService comes from the global quotas module. */
@Module({ providers: [QuotaPlugin] })
export class QuotaModule {}
