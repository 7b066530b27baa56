import { Module } from '@nestjs/common';
import { ImgproxyUrlModule } from '../../imgproxy/imgproxy-url.module';
import { ImgproxyRewritePlugin } from './imgproxy-rewrite.plugin';

@Module({ imports: [ImgproxyUrlModule], providers: [ImgproxyRewritePlugin] })
export class ImgproxyRewriteModule {}
