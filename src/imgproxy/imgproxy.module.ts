import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ImgproxyUrlModule } from './imgproxy-url.module';
import { SignedUrlGuard } from './signed-url.guard';

/**
 * imgproxy integration (docs/tenants-and-keys.md, docs/imgproxy.md): the signed-URL guard of `/t/*`, the
 * source sandbox and the re-signing of every upstream URL with the pool's key (ImgproxyUrlModule,
 * which uploads import directly).
 */
@Module({
  imports: [AuthModule, ImgproxyUrlModule],
  providers: [SignedUrlGuard],
  exports: [ImgproxyUrlModule, SignedUrlGuard],
})
export class ImgproxyModule {}
