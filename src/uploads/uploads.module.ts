import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../plugins/key-auth/auth.module';
import { ImgproxyUrlModule } from '../plugins/imgproxy-rewrite/imgproxy-url.module';
import { ProxyCacheModule } from '../plugins/proxy-cache/proxy-cache.module';
import { ImageEntity } from './image.entity';
import { ImagesRepository } from './images.repository';
import { StreamedBodyRoutes } from './streamed-body-routes';
import { UploadsController } from './uploads.controller';
import { UploadsService } from './uploads.service';

/** Tenant uploads into the folder the imgproxy backends read (docs/imgproxy.md). */
@Module({
  imports: [TypeOrmModule.forFeature([ImageEntity]), AuthModule, ImgproxyUrlModule, ProxyCacheModule],
  controllers: [UploadsController],
  providers: [ImagesRepository, UploadsService, StreamedBodyRoutes],
  exports: [UploadsService],
})
export class UploadsModule {}
