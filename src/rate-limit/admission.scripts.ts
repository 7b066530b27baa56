import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * A Lua script run by EVALSHA, falling back to EVAL (which also caches it) when the server answers
 * NOSCRIPT: after a restart, a failover or SCRIPT FLUSH, and on each cluster node at first use.
 * Hand-rolled rather than `defineCommand`, which would add methods to a client another module owns
 * and needs casts to be typed.
 */
export class LuaScript {
  readonly sha1: string;

  constructor(readonly source: string) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis | Cluster, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha1, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/*
 * The admission store in Redis (docs/rate-limits-and-quotas.md). Buckets live in small hashes, one
 * field per bucket holding its level (`b:60`, `b:3600`) and one field for the hash's time of last
 * update (`b@`): every bucket of a hash is refilled and written together, so they share it. The
 * tenant's hash `a:{t:<id>}` also holds its month view (seed token, requests of the month and of
 * each day, bytes); a route's capacity lives in `a:{r:<route>}`, a tenant's share of a route in
 * `a:{t:<id>}:r:<route>`, an address's buckets in `a:{ip:<address>}:<kind>`. One HMGET and one
 * HSET per hash and TIME once: a proxied request costs one EVALSHA and five commands inside it.
 *
 * Levels are integers "scaled" by the window length in milliseconds (token-bucket.ts), so the
 * scripts and the in-process arithmetic agree bit for bit. Numbers are handed to redis.call as Lua
 * numbers, which Redis converts with 17 significant digits, exact below 2^53 (Lua's own
 * tostring would round above 14); a format call per number would cost more than the command. Time
 * comes from Redis, so instances with skewed clocks share one timeline. Scripts run with effects
 * replication (the default since Redis 5), so TIME may precede writes.
 *
 * Expiry per hash (the `ttl` argument): > 0 = set once, when the script creates the hash (the field
 * `x` marks a hash that has its expiry); -1 = refreshed on every write to when its buckets are full
 * again (addresses: an absent bucket is a full one, and there may be millions of them); 0 = none.
 *
 * The request path's script is written for Redis's cost, which counts (docs/performance.md): each
 * string-to-number conversion, table and command inside it is a measurable share of a request.
 */

/**
 * Checks every bucket of a request and, if each holds a token, takes it; with a month view (the
 * first key is then the tenant's hash) it also checks the request quotas and counts the request, in
 * the same atomic call. Mirrors `refill`/`decideFromLevels` of token-bucket.ts and
 * `evaluateRequestQuotas` of quota-evaluation.ts: change one, change the other (the e2e parity test
 * compares the stores).
 *
 * ARGV: '1' when the first key's month view is checked and counted, else '0'; then per key: ttl, n,
 * the n level fields (for the first key, when counting, followed by the view's seedField,
 * monthField, dayField, bytesField), then n x (rate, windowMs, capacity); last, when counting:
 * monthlyRequests, dailyRequests (0 = none), monthlyBandwidthBytes.
 * Reply: {status, token, requests, dayRequests, bytes, level of each bucket before consumption...}
 *   status 1 admitted (and counted), 0 refused by a bucket (nothing written), 2 month view not
 *   seeded (nothing written), 3/4/5 monthly requests / daily requests / bandwidth used up (the
 *   buckets are consumed, the request is not counted). requests and dayRequests include this
 *   request when it was counted.
 */
export const ADMIT_SCRIPT = new LuaScript(`
local call, tonumber = redis.call, tonumber
local time = call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local counts = ARGV[1] == '1'
local reply = {1, '', 0, 0, 0}
local got, at, lefts = {}, {}, {}
local allowed = true
local a, li = 2, 5
for k = 1, #KEYS do
  local n = tonumber(ARGV[a + 1])
  local nf = n
  if counts and k == 1 then nf = n + 4 end
  local f = a + 2
  local g = call('HMGET', KEYS[k], 'b@', 'x', unpack(ARGV, f, f + nf - 1))
  got[k], at[k] = g, a
  local t = tonumber(g[1])
  local p = f + nf
  for i = 1, n do
    local rate, windowMs, capacity = tonumber(ARGV[p]), tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])
    local level = capacity
    local l = tonumber(g[2 + i])
    if l and t then
      level = l + (now - t) * rate
      if level > capacity then level = capacity end
    end
    li = li + 1
    reply[li] = level
    lefts[li] = level - windowMs
    if level < windowMs then allowed = false end
    p = p + 3
  end
  a = p
end
if not allowed then
  reply[1] = 0
  return reply
end
local counted = false
if counts then
  local g, n = got[1], tonumber(ARGV[3])
  local token = g[n + 3]
  if not token then
    reply[1] = 2
    return reply
  end
  local r, d, bytes = tonumber(g[n + 4] or 0), tonumber(g[n + 5] or 0), tonumber(g[n + 6] or 0)
  local daily = tonumber(ARGV[a + 1])
  reply[2] = token
  if r >= tonumber(ARGV[a]) then reply[1] = 3
  elseif daily > 0 and d >= daily then reply[1] = 4
  elseif bytes >= tonumber(ARGV[a + 2]) then reply[1] = 5
  else
    r, d = r + 1, d + 1
    counted = true
  end
  reply[3], reply[4], reply[5] = r, d, bytes
end
li = 5
for k = 1, #KEYS do
  local s = at[k]
  local key, n, f = KEYS[k], tonumber(ARGV[s + 1]), s + 2
  local view = counted and k == 1
  -- The shapes that occur (a minute and/or an hour bucket, the tenant's count) without building a
  -- table: allocations are a good part of a script's cost.
  if n == 2 and view then
    call('HSET', key, 'b@', now, ARGV[f], lefts[li + 1], ARGV[f + 1], lefts[li + 2], ARGV[f + 3], reply[3], ARGV[f + 4], reply[4])
  elseif n == 2 then
    call('HSET', key, 'b@', now, ARGV[f], lefts[li + 1], ARGV[f + 1], lefts[li + 2])
  elseif n == 1 and not view then
    call('HSET', key, 'b@', now, ARGV[f], lefts[li + 1])
  else
    local w = {'b@', now}
    for i = 1, n do
      w[2 * i + 1] = ARGV[f + i - 1]
      w[2 * i + 2] = lefts[li + i]
    end
    if view then
      w[#w + 1] = ARGV[f + n + 1]
      w[#w + 1] = reply[3]
      w[#w + 1] = ARGV[f + n + 2]
      w[#w + 1] = reply[4]
    end
    if n > 0 or view then call('HSET', key, unpack(w)) end
  end
  local fresh = not got[k][2]
  if fresh then call('HSET', key, 'x', 1) end
  local ttl = ARGV[s]
  if ttl == '-1' then
    local p, ms = f + n, 0
    if counts and k == 1 then p = p + 4 end
    for i = 1, n do
      local m = math.ceil((ARGV[p + 2] - lefts[li + i]) / ARGV[p])
      if m > ms then ms = m end
      p = p + 3
    end
    if ms > 0 then call('PEXPIRE', key, ms) end
  elseif fresh and ttl ~= '0' then
    call('PEXPIRE', key, ttl)
  end
  li = li + n
end
return reply
`);

/**
 * Gives a token back to each bucket of one hash (refilled to now, capped at the burst) and, when
 * asked, uncounts the request from the month view it was counted into. Only Redis Cluster needs
 * it: there a request's hashes live in several slots, one script runs per slot, and a slot that
 * admitted while another refused must not keep the tokens ("a refused request consumes from none").
 * A hash without buckets stored is full and stays so.
 *
 * KEYS: one hash. ARGV: n, the n level fields, n x (rate, windowMs, capacity), then '1' +
 * seedField + token + monthField + dayField to uncount, or '0'.
 */
export const REFUND_SCRIPT = new LuaScript(`
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local n = tonumber(ARGV[1])
local u = 2 + n * 4
local uncount = ARGV[u] == '1'
local g
if uncount then
  g = redis.call('HMGET', KEYS[1], 'b@', ARGV[u + 1], ARGV[u + 3], ARGV[u + 4], unpack(ARGV, 2, 1 + n))
else
  g = redis.call('HMGET', KEYS[1], 'b@', '', '', '', unpack(ARGV, 2, 1 + n))
end
local w = {}
local t = tonumber(g[1])
if t then
  w[1], w[2] = 'b@', now
  local p = 2 + n
  for i = 1, n do
    local l = tonumber(g[4 + i])
    if l then
      local level = l + (now - t) * ARGV[p] + ARGV[p + 1]
      if level > tonumber(ARGV[p + 2]) then level = tonumber(ARGV[p + 2]) end
      w[#w + 1] = ARGV[1 + i]
      w[#w + 1] = level
    end
    p = p + 3
  end
end
if uncount and g[2] == ARGV[u + 2] then
  w[#w + 1] = ARGV[u + 3]
  w[#w + 1] = tonumber(g[3] or 1) - 1
  w[#w + 1] = ARGV[u + 4]
  w[#w + 1] = tonumber(g[4] or 1) - 1
end
if #w > 0 then redis.call('HSET', KEYS[1], unpack(w)) end
return 1
`);

/**
 * The `local-sync` policy's write-back: each bucket is refilled to now, the tokens the instance
 * spent since its last sync are taken (the level may go below zero when several instances spent
 * the same tokens: the debt then delays the next admissions, so the long-run rate holds), and the
 * new level is returned so the instance continues from the shared figure. Every bucket of a hash
 * is sent (spent 0 for the unused ones), since they share the hash's time.
 *
 * ARGV per key: ttl, n, the n level fields, n x (rate, windowMs, capacity, tokensSpent).
 * Reply: the level of each bucket after the spending.
 */
export const SYNC_SCRIPT = new LuaScript(`
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local reply = {}
local a = 1
for k = 1, #KEYS do
  local ttl, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local f = a + 2
  local g = redis.call('HMGET', KEYS[k], 'b@', 'x', unpack(ARGV, f, f + n - 1))
  local t = tonumber(g[1])
  local w = {'b@', now}
  local fullMs = 0
  local p = f + n
  for i = 1, n do
    local capacity = tonumber(ARGV[p + 2])
    local level = capacity
    local l = tonumber(g[2 + i])
    if l and t then
      level = l + (now - t) * ARGV[p]
      if level > capacity then level = capacity end
    end
    level = level - ARGV[p + 3] * ARGV[p + 1]
    reply[#reply + 1] = level
    w[2 * i + 1] = ARGV[f + i - 1]
    w[2 * i + 2] = level
    local ms = math.ceil((capacity - level) / ARGV[p])
    if ms > fullMs then fullMs = ms end
    p = p + 4
  end
  a = p
  local fresh = not g[2]
  if fresh then
    w[#w + 1] = 'x'
    w[#w + 1] = 1
  end
  redis.call('HSET', KEYS[k], unpack(w))
  if ttl == -1 and fullMs > 0 then redis.call('PEXPIRE', KEYS[k], fullMs)
  elseif fresh and ttl > 0 then redis.call('PEXPIRE', KEYS[k], ttl) end
end
return reply
`);

/**
 * The part of a key Redis Cluster hashes: the first non-empty `{…}`, else the whole key. Keys with
 * the same hash tag are in the same slot and may share a script.
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}
