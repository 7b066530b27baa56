import { Module } from '@nestjs/common';
import { TracingService } from './tracing.service';

/** Optional OTLP span export; see TracingService. */
@Module({ providers: [TracingService], exports: [TracingService] })
export class TracingModule {}
