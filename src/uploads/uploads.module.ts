import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module';
import { ImgproxyUrlModule } from '../imgproxy/imgproxy-url.module';
import { ProxyCacheModule } from '../plugins/proxy-cache/proxy-cache.module';
import { ProxyModule } from '../proxy/proxy.module';
import { ImageEntity } from './image.entity';
import { ImagesRepository } from './images.repository';
import { UploadsController } from './uploads.controller';
import { UploadsService } from './uploads.service';

/** Tenant uploads into the folder the imgproxy backends read (docs/imgproxy.md). */
@Module({
  imports: [TypeOrmModule.forFeature([ImageEntity]), AuthModule, ImgproxyUrlModule, ProxyModule, ProxyCacheModule],
  controllers: [UploadsController],
  providers: [ImagesRepository, UploadsService],
  exports: [UploadsService],
})
export class UploadsModule {}
