import { Module } from '@nestjs/common';
import { IpAllowlistModule } from '../../ip-allowlist/ip-allowlist.module';
import { IpRestrictionPlugin } from './ip-restriction.plugin';

@Module({ imports: [IpAllowlistModule], providers: [IpRestrictionPlugin] })
export class IpRestrictionModule {}
