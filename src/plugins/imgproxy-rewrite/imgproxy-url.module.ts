import { Module } from '@nestjs/common';
import { ImgproxyRewritePlugin } from './imgproxy-rewrite.plugin';
import { ImgproxyUrlService } from './imgproxy-url.service';

/**
 * ImgproxyUrlService alone (it needs only the configuration), so the proxy's `/i/*` route and
 * uploads can use it without importing the `/t/*` controller's module, which itself needs the
 * proxy: no module cycle.
 */
@Module({
  providers: [ImgproxyUrlService, ImgproxyRewritePlugin],
  exports: [ImgproxyUrlService],
})
export class ImgproxyUrlModule {}
