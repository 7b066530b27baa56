import type { ServerResponse } from 'node:http';
import { GatewayException } from '../common/errors/gateway.exception';
import { Chain } from './chain';
import { GatewayContext } from './context';
import { type AccessStep, HANDLED } from './plugin';

function context(): GatewayContext {
  const ctx = new GatewayContext('req-1', '127.0.0.1', undefined, undefined);
  ctx.res = {} as ServerResponse;
  return ctx;
}

describe('Chain', () => {
  it('runs synchronous steps in order within the same tick, then the terminal', () => {
    const seen: string[] = [];
    const step = (name: string): AccessStep => () => {
      seen.push(name);
      return undefined;
    };
    const chain = new Chain([step('a'), step('b')], ['a', 'b'], [], () => void seen.push('proxy'), () => seen.push('refused'));
    chain.run(context());
    expect(seen).toEqual(['a', 'b', 'proxy']);
  });

  it('continues after a step that waited, and stops at the first refusal', async () => {
    const seen: string[] = [];
    const refusals: unknown[] = [];
    const chain = new Chain(
      [
        () => Promise.resolve(undefined).then(() => void seen.push('lookup')),
        () => new GatewayException('rate_limited'),
        () => void seen.push('never'),
      ],
      ['auth', 'limit', 'after'],
      [],
      () => void seen.push('proxy'),
      (_ctx, error) => refusals.push(error),
    );
    chain.run(context());
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(['lookup']);
    expect((refusals[0] as GatewayException).code).toBe('rate_limited');
  });

  it('answers a thrown error and a rejected promise through the refusal writer', async () => {
    const refusals: unknown[] = [];
    const refuse = (_ctx: GatewayContext, error: unknown) => refusals.push(error);
    new Chain([() => { throw new GatewayException('bad_url'); }], ['x'], [], () => undefined, refuse).run(context());
    new Chain([() => Promise.reject(new GatewayException('unauthorized'))], ['y'], [], () => undefined, refuse).run(context());
    new Chain([], [], [], () => Promise.reject(new GatewayException('bad_gateway')), refuse).run(context());
    await new Promise((resolve) => setImmediate(resolve));
    expect(refusals.map((e) => (e as GatewayException).code)).toEqual(['bad_url', 'unauthorized', 'bad_gateway']);
  });

  it('stops without a refusal when a step answered itself', () => {
    const seen: string[] = [];
    new Chain([() => HANDLED, () => void seen.push('never')], ['cors', 'x'], [], () => void seen.push('proxy'), () => seen.push('refused')).run(context());
    expect(seen).toEqual([]);
  });

  it('admits a WebSocket upgrade by the access steps alone', async () => {
    const open = new Chain([() => undefined], ['a'], [], () => undefined, () => undefined);
    await expect(open.admit(context())).resolves.toBeUndefined();
    const closed = new Chain([() => Promise.resolve(new GatewayException('forbidden'))], ['a'], [], () => undefined, () => undefined);
    await expect(closed.admit(context())).resolves.toMatchObject({ code: 'forbidden' });
  });

  it('counts time and calls per step when compiled with timings', () => {
    const chain = new Chain([() => undefined, () => undefined], ['a', 'b'], [], () => undefined, () => undefined, { timed: true });
    const ctx = context();
    chain.run(ctx);
    chain.run(ctx);
    expect(Array.from(chain.timings!.calls)).toEqual([2, 2, 2]);
    expect(chain.timings!.nanos[0]).toBeGreaterThan(0);
  });
});
