/**
 * Lua scripts of the Redis change feed. Each runs atomically, so a crash of
 * the caller can never leave half a transaction in the stream, and the
 * comparisons against the stored last id happen server-side, with no race
 * against another appender.
 *
 * Stream ids can exceed 2^53 (hi*2^32+lo of an LSN), beyond Lua's exact
 * numbers, so ids are compared as strings: both halves are decimal without
 * leading zeros, hence shorter means smaller and equal lengths compare
 * lexicographically.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

const CMP_ID = `
local function cmpnum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmpid(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local c = cmpnum(am, bm)
  if c ~= 0 then return c end
  return cmpnum(as, bs)
end
`;

/**
 * KEYS: stream, meta, columns. ARGV: resume JSON ('' for a piece that is not
 * the end of its transaction), now (ms), force ('1': record the resume
 * position even if this piece added nothing, because an earlier piece of the
 * same transaction did), k = number of column sets, k pairs (column-set id,
 * column-set JSON), then quadruplets (stream id, event JSON without columns,
 * commit time ms, column-set id) in increasing id order.
 * Stores the column sets (content-addressed, so HSETNX is enough), adds the
 * entries whose id is above meta.lastId (a re-appended transaction, whole or
 * partial, adds only what is missing), records the new lastId and, at the
 * end of a transaction, the resume position, and lastId again as wholeId (the
 * last change of a whole transaction: lastId above it means a transaction's
 * later pieces are still to come). Returns the number of entries added.
 *
 * A large transaction is appended in pieces (RedisChangeFeed.append), each one
 * call: a crash between pieces leaves a prefix of the transaction in the feed
 * and the resume position before it, so the capture reads the transaction
 * again and the pieces already there are skipped by the lastId comparison.
 * The resume position moves only when the transaction added something or had
 * no events: re-appending an old transaction after newer ones must not drag
 * the stored position backwards.
 */
export const APPEND_LUA = `${CMP_ID}
local last = redis.call('HGET', KEYS[2], 'lastId') or '0-0'
local k = tonumber(ARGV[4])
for i = 5, 4 + 2 * k, 2 do redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]) end
local first = 5 + 2 * k
local added = 0
for i = first, #ARGV, 4 do
  if cmpid(ARGV[i], last) > 0 then
    redis.call('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1], 't', ARGV[i + 2], 'c', ARGV[i + 3])
    last = ARGV[i]
    added = added + 1
  end
end
if added > 0 then redis.call('HSET', KEYS[2], 'lastId', last) end
if ARGV[1] ~= '' and (added > 0 or first > #ARGV or ARGV[3] == '1') then
  redis.call('HSET', KEYS[2], 'lastId', last, 'resume', ARGV[1], 'wholeId', last)
end
if added > 0 or first > #ARGV then redis.call('HSETNX', KEYS[2], 'createdAt', ARGV[2]) end
return added
`;

/**
 * KEYS: stream, meta. ARGV: maxChanges (-1 = none), cutoff commit time ms
 * (-1 = none), batch. Drops entries from the head while the feed is longer
 * than maxChanges or the head entry's commit time is below the cutoff, at most
 * `batch` per call (the caller loops), so one call never blocks Redis long.
 * Age is judged on the entry's `t` field (commit time), not its id: ids are
 * LSN-based, not timestamps. Walking from the head stops at the first entry
 * young enough, so retention never cuts a hole in the middle of the feed even
 * if commit times are not perfectly monotonic.
 * Records meta.trimmedId = the highest id removed. Returns the count removed.
 */
export const TRIM_LUA = `
local maxc = tonumber(ARGV[1])
local cutoff = tonumber(ARGV[2])
local batch = tonumber(ARGV[3])
-- Optional floor: entries above this id are kept whatever the policy (a consumer has not read them yet).
local keep = ARGV[4]
local function le(a, b)
  -- a <= b for stream ids "<ms>-<seq>" compared as numbers held in strings (they exceed 2^53).
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as <= bs
end
local len = redis.call('XLEN', KEYS[1])
local excess = 0
if maxc >= 0 and len > maxc then excess = len - maxc end
if len == 0 or (excess == 0 and cutoff < 0) then return 0 end
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', batch)
local removed = 0
local lastRemoved
for i, entry in ipairs(entries) do
  local drop = i <= excess
  if not drop and cutoff >= 0 then
    local f = entry[2]
    for j = 1, #f, 2 do
      if f[j] == 't' then drop = tonumber(f[j + 1]) < cutoff break end
    end
  end
  if drop and keep ~= nil and keep ~= '' and not le(entry[1], keep) then drop = false end
  if not drop then break end
  removed = i
  lastRemoved = entry[1]
end
if removed == 0 then return 0 end
-- The removed entries are exactly the oldest ones, so an exact MAXLEN trim drops precisely them.
redis.call('XTRIM', KEYS[1], 'MAXLEN', len - removed)
redis.call('HSET', KEYS[2], 'trimmedId', lastRemoved)
return removed
`;

/**
 * KEYS: stream, meta. ARGV: now (ms). The gap marker (ChangeFeed.markGap):
 * gap = lastId with its index part plus one (0-1 for a feed never written),
 * stored as lastId and trimmedId; every entry is removed and the resume
 * position deleted. Returns the gap id.
 */
export const GAP_LUA = `
local last = redis.call('HGET', KEYS[2], 'lastId') or '0-0'
local ms, seq = string.match(last, '^(%d+)-(%d+)$')
-- seq + 1 on a decimal string (it may exceed 2^53)
local digits = {}
for d in string.gmatch(seq, '%d') do digits[#digits + 1] = tonumber(d) end
local i = #digits
while i >= 1 do
  if digits[i] < 9 then digits[i] = digits[i] + 1 break end
  digits[i] = 0
  i = i - 1
end
local next = table.concat(digits)
if i == 0 then next = '1' .. next end
local gap = ms .. '-' .. next
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
redis.call('HSET', KEYS[2], 'lastId', gap, 'trimmedId', gap, 'wholeId', gap)
redis.call('HDEL', KEYS[2], 'resume')
redis.call('HSETNX', KEYS[2], 'createdAt', ARGV[1])
return gap
`;

/** EVALSHA with a one-time EVAL fallback when the script cache is empty (first use, restart, SCRIPT FLUSH). */
export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
