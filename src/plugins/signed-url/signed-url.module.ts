import { Module } from '@nestjs/common';
import { ImgproxyModule } from '../../imgproxy/imgproxy.module';
import { SignedUrlPlugin } from './signed-url.plugin';

@Module({ imports: [ImgproxyModule], providers: [SignedUrlPlugin] })
export class SignedUrlModule {}
