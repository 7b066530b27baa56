import { Injectable, PipeTransform } from '@nestjs/common';
import { GatewayException } from '../../common/errors/gateway.exception';
import { isKeyId } from './api-key-format';

/** A path key id that is not 12 base62 characters cannot name a key: 404 like any unknown one. */
@Injectable()
export class KeyIdParamPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!isKeyId(value)) throw new GatewayException('not_found', 'No such key for this tenant.');
    return value;
  }
}
