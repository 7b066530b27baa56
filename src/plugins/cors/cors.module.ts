import { Module } from '@nestjs/common';
import { CorsPlugin } from './cors.plugin';

@Module({ providers: [CorsPlugin] })
export class CorsModule {}
