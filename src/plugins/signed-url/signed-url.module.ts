import { Module } from '@nestjs/common';
import { ImgproxyUrlModule } from '../imgproxy-rewrite/imgproxy-url.module';
import { AuthModule } from '../key-auth/auth.module';
import { SignedUrlGuard } from './signed-url.guard';
import { SignedUrlPlugin } from './signed-url.plugin';

/**
 * Signed image URLs (`/t/<keyId>/<signature>/...`, docs/imgproxy.md): the guard (its Nest face)
 * and the chain step calling its logic. The key's signing pairs come from the key-auth module.
 */
@Module({
  imports: [AuthModule, ImgproxyUrlModule],
  providers: [SignedUrlGuard, SignedUrlPlugin],
  exports: [SignedUrlGuard],
})
export class SignedUrlModule {}
