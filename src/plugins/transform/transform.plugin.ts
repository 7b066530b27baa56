import type { OutgoingHttpHeaders } from 'node:http';
import { Injectable } from '@nestjs/common';
import type { GatewayContext } from '../../gateway/context';
import { ChainPlugin, type CompiledSteps, type GatewayPlugin, PRIORITY } from '../../gateway/plugin';
import type { RouteSpec } from '../../gateway/route-spec';
import { applyHeaderEdit, compileHeaderEdit } from '../../proxy/header-edit';

/**
 * `headers.response` of a route: headers set or removed on the upstream's (or the cache's) answer
 * before it is written. `headers.request` is applied by the proxy when it builds the upstream
 * request, from the same compiled rule (see header-edit.ts).
 */
@Injectable()
@ChainPlugin()
export class TransformPlugin implements GatewayPlugin {
  readonly name = 'transform';
  readonly priority = PRIORITY.transform;

  

  compile(route: RouteSpec): CompiledSteps | undefined {
    const edit = compileHeaderEdit(route.headers?.response);
    if (!edit) return undefined;
    return { response: (_ctx: GatewayContext, _status: number, headers: OutgoingHttpHeaders) => applyHeaderEdit(edit, headers) };
  }
}
