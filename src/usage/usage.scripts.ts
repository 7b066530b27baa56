import { LuaScript } from '../rate-limit/redis-token-bucket.script';

/*
 * Usage counters in Redis (docs/rate-limits-and-quotas.md). Per tenant, all keys share the hash tag `{t:<tenantId>}` (the
 * tag of the tenant's rate-limit buckets), so every script below touches one slot:
 *
 *   month    u:{t:id}:m:YYYY-MM  hash  s = seed token, r, bi, bo, r:DD (requests of day DD)
 *   pending  u:{t:id}:p          hash  YYYY-MM-DD:r|bi|bo  deltas not yet in PostgreSQL
 *   inflight u:{t:id}:f          hash  the batch a flush took from pending, + '#batch' = its id
 *   gen      u:{t:id}:g          int   bumped whenever a batch is taken or finished
 *
 * Invariant once the month hash is seeded: month = PostgreSQL rows of the month + pending +
 * inflight (when not yet committed). The increment keeps it (month and pending in one script); a
 * flush moves amounts pending → inflight → PostgreSQL without touching the month. A month hash
 * without its seed token (first use of a month, or Redis lost its data) is never incremented; it
 * is rebuilt by SEED from PostgreSQL + pending + inflight, and the gen check makes SEED refuse
 * (the caller retries) if a flush moved amounts between the PostgreSQL read and the script.
 * Numbers are formatted with %.0f: Lua's default formatting rounds above 14 digits.
 */

/** KEYS: month, pending. ARGV: day, DD, requests, bytesIn, bytesOut. */
export const USAGE_INCREMENT = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], 's') == 1 then
  redis.call('HINCRBY', KEYS[1], 'r', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'r:' .. ARGV[2], ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'bi', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'bo', ARGV[5])
end
redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':r', ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':bi', ARGV[4])
redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':bo', ARGV[5])
return 1
`);

/**
 * Several days' deltas at once, all or nothing: hands the deltas an instance counted in process
 * during an outage over to Redis when it answers again.
 * KEYS: pending, then the month key of each row. ARGV: day, DD, requests, bytesIn, bytesOut per row.
 */
export const USAGE_INCREMENT_MANY = new LuaScript(`
for i = 2, #KEYS do
  local a = (i - 2) * 5
  if redis.call('HEXISTS', KEYS[i], 's') == 1 then
    redis.call('HINCRBY', KEYS[i], 'r', ARGV[a + 3])
    redis.call('HINCRBY', KEYS[i], 'r:' .. ARGV[a + 2], ARGV[a + 3])
    redis.call('HINCRBY', KEYS[i], 'bi', ARGV[a + 4])
    redis.call('HINCRBY', KEYS[i], 'bo', ARGV[a + 5])
  end
  redis.call('HINCRBY', KEYS[1], ARGV[a + 1] .. ':r', ARGV[a + 3])
  redis.call('HINCRBY', KEYS[1], ARGV[a + 1] .. ':bi', ARGV[a + 4])
  redis.call('HINCRBY', KEYS[1], ARGV[a + 1] .. ':bo', ARGV[a + 5])
end
return 1
`);

/**
 * Adds amounts that reached PostgreSQL directly while Redis was unreachable to the month view,
 * only if the month hash is the one seeded before the outage (same token): a hash seeded since
 * then was built from PostgreSQL and already holds them.
 * KEYS: month. ARGV: token, then field/value pairs.
 */
export const USAGE_REPLAY = new LuaScript(`
if redis.call('HGET', KEYS[1], 's') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`);

/**
 * Starts a flush: the pending deltas become the inflight batch (unless a batch is still inflight
 * from a failed attempt: that one is retried first, with its original id).
 * KEYS: pending, inflight, gen. ARGV: id for a new batch. Returns HGETALL of the batch, or {}.
 */
export const USAGE_TAKE = new LuaScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[2], '#batch', ARGV[1])
  redis.call('INCR', KEYS[3])
end
return redis.call('HGETALL', KEYS[2])
`);

/** Ends a flush whose batch is committed. KEYS: inflight, gen. ARGV: batch id. */
export const USAGE_FINISH = new LuaScript(`
if redis.call('HGET', KEYS[1], '#batch') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
return 1
`);

/**
 * Seeds a month hash from PostgreSQL's figures (ARGV pairs) plus the month's amounts still in
 * pending, plus the inflight batch when the caller found it not yet committed.
 * KEYS: month, pending, inflight, gen.
 * ARGV: expected gen, inflight batch id to include ('' = none), 'YYYY-MM', seed token, TTL seconds,
 * then field/value pairs. Returns 1 seeded, 0 already seeded, -1 stale (gen moved: retry).
 */
export const USAGE_SEED = new LuaScript(`
local gen = tonumber(redis.call('GET', KEYS[4]) or '0')
if gen ~= tonumber(ARGV[1]) then return -1 end
if redis.call('HEXISTS', KEYS[1], 's') == 1 then return 0 end
local acc = {}
local function add(field, value)
  acc[field] = (acc[field] or 0) + value
end
for i = 6, #ARGV, 2 do add(ARGV[i], tonumber(ARGV[i + 1])) end
local function addDeltas(key)
  local kv = redis.call('HGETALL', key)
  for i = 1, #kv, 2 do
    local field = kv[i]
    if string.sub(field, 1, 8) == ARGV[3] .. '-' then
      local kind = string.sub(field, 12)
      local value = tonumber(kv[i + 1])
      add(kind, value)
      if kind == 'r' then add('r:' .. string.sub(field, 9, 10), value) end
    end
  end
end
addDeltas(KEYS[2])
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], '#batch') == ARGV[2] then addDeltas(KEYS[3]) end
redis.call('DEL', KEYS[1])
for field, value in pairs(acc) do redis.call('HSET', KEYS[1], field, string.format('%.0f', value)) end
redis.call('HSET', KEYS[1], 's', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
`);

/**
 * Forgets a month (admin reset): its view and its deltas not yet flushed. Bumps gen so that a
 * seed racing with the reset retries.
 * KEYS: month, pending, inflight, gen. ARGV: 'YYYY-MM'.
 */
export const USAGE_RESET = new LuaScript(`
redis.call('DEL', KEYS[1])
for k = 2, 3 do
  local kv = redis.call('HGETALL', KEYS[k])
  for i = 1, #kv, 2 do
    if string.sub(kv[i], 1, 8) == ARGV[1] .. '-' then redis.call('HDEL', KEYS[k], kv[i]) end
  end
end
redis.call('INCR', KEYS[4])
return 1
`);
