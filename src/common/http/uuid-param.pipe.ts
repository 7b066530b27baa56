import { Injectable, PipeTransform } from '@nestjs/common';
import { GatewayException } from '../errors/gateway.exception';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Path ids are uuids. Anything else cannot name a resource, so it is a 404 like any unknown
 * id (and never reaches PostgreSQL, which would reject the cast).
 */
@Injectable()
export class UuidParamPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!UUID.test(value)) throw new GatewayException('not_found');
    return value.toLowerCase();
  }
}
