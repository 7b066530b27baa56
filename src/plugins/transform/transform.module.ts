import { Module } from '@nestjs/common';
import { TransformPlugin } from './transform.plugin';

@Module({ providers: [TransformPlugin] })
export class TransformModule {}
