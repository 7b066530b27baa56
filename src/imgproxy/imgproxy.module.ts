import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { ProxyModule } from '../proxy/proxy.module';
import { ImgproxyUrlModule } from './imgproxy-url.module';
import { SignedImageController } from './signed-image.controller';
import { SignedUrlGuard } from './signed-url.guard';

/**
 * imgproxy integration (docs/tenants-and-keys.md, docs/imgproxy.md): signed tenant URLs on `/t/*`, the source sandbox and the
 * re-signing of every upstream URL with the pool's key. The header-mode route (ProxyModule) and
 * uploads import ImgproxyUrlModule directly.
 */
@Module({
  imports: [AuthModule, ProxyModule, ImgproxyUrlModule],
  controllers: [SignedImageController],
  providers: [SignedUrlGuard],
  exports: [ImgproxyUrlModule, SignedUrlGuard],
})
export class ImgproxyModule {}
