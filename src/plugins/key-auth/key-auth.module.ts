import { Module } from '@nestjs/common';
import { AuthModule } from '../../auth/auth.module';
import { KeyAuthPlugin } from './key-auth.plugin';

@Module({ imports: [AuthModule], providers: [KeyAuthPlugin] })
export class KeyAuthModule {}
