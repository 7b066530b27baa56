import { LuaScript } from '../rate-limit/admission.scripts';

/*
 * The shared month view of a tenant, in the tenant's admission hash `a:{t:<id>}` beside its buckets
 * (docs/rate-limits-and-quotas.md), for month M = 'YYYY-MM':
 *
 *   s:M   seed token (the view exists only with it)     v:M  seed version (see below)
 *   r:M   requests of the month                          r:YYYY-MM-DD  requests of a day
 *   by:M  request + response bytes (what the bandwidth quota counts)
 *   fv    highest flush version written to PostgreSQL    x    the hash has its expiry
 *
 * The admission script counts a request into r:M and r:<day> in the same atomic call that checks
 * its quota; bytes and refunds arrive in batches (SETTLE). PostgreSQL is written by each instance
 * from its own journal, not from Redis, so Redis may lose its data without losing a count.
 *
 * A view is built (SEED) from PostgreSQL's rows of the month, read in one statement together with
 * the tenant's flush version V (usage_versions, bumped by every flush of the tenant under a row
 * lock, so versions follow commit order). The view then holds exactly the flushes with version ≤ V.
 * After each flush of version F an instance runs REPLAY: amounts it had added to another view (tag
 * ≠ the current seed token) or to none (tag '') are added to the current view when its version is
 * below F, i.e. when it was seeded before the flush committed. REPLAY also raises `fv`, and SEED
 * refuses (the caller re-reads PostgreSQL) when `fv` is above the version it read: a flush that
 * committed between the read and the script is then never missed. Numbers are formatted with %.0f:
 * Lua's default formatting rounds above 14 digits.
 */

/**
 * KEYS[1]: the tenant hash. ARGV: M, version, token, TTL seconds, then field/value pairs of the view.
 * Returns 1 seeded, 0 already seeded, -1 stale (a flush committed after the PostgreSQL read: retry).
 */
export const USAGE_SEED = new LuaScript(`
local m = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 's:' .. m) == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'fv') or '0') > tonumber(ARGV[2]) then return -1 end
-- Every view field goes: other months are no longer read, and this month's are rebuilt whole.
local stale = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local kind = string.match(field, '^(%a+):%d%d%d%d%-%d%d')
  if kind and kind ~= 'b' then stale[#stale + 1] = field end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
local set = {'s:' .. m, ARGV[3], 'v:' .. m, ARGV[2], 'x', '1'}
for i = 5, #ARGV do set[#set + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(set))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`);

/**
 * A batch of request outcomes, one entry per tenant, day and seed token (KEYS may repeat):
 * bytes go to the current view; a refund (a 5xx the gateway wrote itself) is taken back only from
 * the view the request was counted into; `local-sync` requests are counted into the current view.
 * Nothing is written where no view exists: the journal holds it, and the next seed reads it from
 * PostgreSQL or a replay adds it.
 * ARGV per entry (7): seedField, monthField, dayField, bytesField, refundToken, refunds, newRequests,
 * then bytes: 8 in all.
 * Reply per entry: current token ('' = no view), requests, dayRequests, bytes, refunds applied.
 */
export const USAGE_SETTLE = new LuaScript(`
local reply = {}
for k = 1, #KEYS do
  local a = (k - 1) * 8
  local got = redis.call('HMGET', KEYS[k], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
  local token = got[1]
  if token then
    local refunded = 0
    if token == ARGV[a + 5] then refunded = tonumber(ARGV[a + 6]) end
    local dr = ARGV[a + 7] - refunded
    local r = (got[2] or 0) + dr
    local d = (got[3] or 0) + dr
    local bytes = (got[4] or 0) + ARGV[a + 8]
    redis.call('HSET', KEYS[k], ARGV[a + 2], r, ARGV[a + 3], d, ARGV[a + 4], bytes)
    reply[#reply + 1] = token
    reply[#reply + 1] = r
    reply[#reply + 1] = d
    reply[#reply + 1] = bytes
    reply[#reply + 1] = refunded
  else
    reply[#reply + 1] = ''
    reply[#reply + 1] = 0
    reply[#reply + 1] = 0
    reply[#reply + 1] = 0
    reply[#reply + 1] = 0
  end
end
return reply
`);

/**
 * After a flush: see the file comment. KEYS: one tenant hash per tenant.
 * ARGV per tenant: version, TTL ms (should the hash not exist), n, then n entries of 8:
 * seedField, versionField, monthField, dayField, bytesField, tag, requests, bytes.
 * Returns the number of entries added to a view.
 */
export const USAGE_REPLAY = new LuaScript(`
local added = 0
local a = 1
for k = 1, #KEYS do
  local version, ttl, n = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  local meta = redis.call('HMGET', KEYS[k], 'fv', 'x')
  for e = 1, n do
    local got = redis.call('HMGET', KEYS[k], ARGV[a], ARGV[a + 1])
    if got[1] and got[1] ~= ARGV[a + 5] and tonumber(got[2] or '0') < version then
      local r, bytes = tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
      if r ~= 0 then
        redis.call('HINCRBY', KEYS[k], ARGV[a + 2], r)
        redis.call('HINCRBY', KEYS[k], ARGV[a + 3], r)
      end
      if bytes ~= 0 then redis.call('HINCRBY', KEYS[k], ARGV[a + 4], bytes) end
      added = added + 1
    end
    a = a + 8
  end
  if tonumber(meta[1] or '0') < version then
    if meta[2] then
      redis.call('HSET', KEYS[k], 'fv', version)
    else
      redis.call('HSET', KEYS[k], 'fv', version, 'x', '1')
      redis.call('PEXPIRE', KEYS[k], ttl)
    end
  end
end
return added
`);

/** Forgets a month's view (admin reset). KEYS[1]: the tenant hash. ARGV: M. */
export const USAGE_RESET = new LuaScript(`
local gone = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local kind, month = string.match(field, '^(%a+):(%d%d%d%d%-%d%d)')
  if kind and kind ~= 'b' and month == ARGV[1] then gone[#gone + 1] = field end
end
if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
return #gone
`);
