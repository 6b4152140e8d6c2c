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

/** The number of changes an entry holds: `n` of a piece, 1 for an entry of one change (feeds written before pieces). */
const ENTRY_COUNT = `
local function entrycount(f)
  for j = 1, #f, 2 do
    if f[j] == 'n' then return tonumber(f[j + 1]) end
  end
  return 1
end
local function fieldof(f, name)
  for j = 1, #f, 2 do
    if f[j] == name then return f[j + 1] end
  end
  return nil
end
local function getcount(stream, meta)
  local c = redis.call('HGET', meta, 'count')
  if c then return tonumber(c) end
  return redis.call('XLEN', stream)
end
`;

/**
 * KEYS: stream, meta, columns. ARGV: resume JSON ('' for a piece that is not
 * the end of its transaction), now (ms), force ('1': record the resume
 * position even if this piece added nothing, because an earlier piece of the
 * same transaction did), expected generation (meta.createdAt the appender
 * knows, '' for any: another one returns {'replaced', createdAt} and writes
 * nothing), k = number of column sets, k pairs (column-set id,
 * column-set JSON), m = number of pieces, then m sextuplets in increasing
 * order: first stream id, last stream id, payload (feed-codec.ts), commit
 * time ms, number of changes, precise commit estimate ms for lag ('' for
 * none: commit-clock.ts); then, optionally, the appending process's
 * local-echo token (local-echo.ts), stored as field `o` of each entry ('' for none), and, with a fourth
 * KEY (a job's in-flight counter), how to count into it: 'each' (every piece added is a whole transaction:
 * INCRBY the pieces added) or 'tx' (the last piece of one whole transaction: INCRBY 1 when the transaction
 * added anything, this piece or, `force`, an earlier one). Several pieces are several small transactions
 * appended together (RedisChangeFeed.appendMany), the resume position that
 * of the last one.
 *
 * The piece becomes one stream entry whose id is its LAST change's stream id
 * (fields b = payload, t = commit time, n = changes, f = first change's id,
 * r = the commit estimate lag is measured from, when there is one: outside
 * the payload, and a re-appended piece is skipped whole, so it never makes
 * a re-read transaction differ),
 * so "entries with id > since" are exactly the entries holding changes after
 * `since`. It is added when its last id is above meta.lastId (a re-appended
 * transaction, whole or partial, adds only what is missing); a piece that
 * straddles lastId is not added and the script returns {'straddle', lastId}:
 * the caller appends again only the changes above it. meta.count keeps the
 * number of changes in the stream (XLEN counts entries); meta.lastId the
 * newest change's id; at the end of a transaction, the resume position, and
 * lastId again as wholeId (the last change of a whole transaction: lastId
 * above it means a transaction's later pieces are still to come).
 * Returns the number of changes added; with an echo token, {'added', changes added, lastId before the call}:
 * the appender's local echo then knows that nothing lies in the stream between that id and its first piece.
 *
 * A large transaction is appended in pieces (RedisChangeFeed.append), each one
 * call: a crash between pieces leaves a prefix of the transaction in the feed
 * and the resume position before it, so the capture reads the transaction
 * again and the pieces already there are skipped by the lastId comparison.
 * The resume position moves only when the transaction added something or had
 * no events: re-appending an old transaction after newer ones must not drag
 * the stored position backwards.
 */
export const APPEND_LUA = `${CMP_ID}${ENTRY_COUNT}
if ARGV[4] ~= '' then
  local born = redis.call('HGET', KEYS[2], 'createdAt')
  if born and born ~= ARGV[4] then return {'replaced', born} end
end
local last = redis.call('HGET', KEYS[2], 'lastId') or '0-0'
local lastBefore = last
local k = tonumber(ARGV[5])
for i = 6, 5 + 2 * k, 2 do redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]) end
local p = 6 + 2 * k
local m = tonumber(ARGV[p])
p = p + 1
local empty = m == 0
-- A piece that straddles lastId: nothing is written, the caller appends the part above it.
for j = 0, m - 1 do
  local b = p + 6 * j
  if cmpid(ARGV[b + 1], last) > 0 and cmpid(ARGV[b], last) <= 0 then return {'straddle', last} end
end
local added = 0
local count
local token = ARGV[p + 6 * m]
for j = 0, m - 1 do
  local b = p + 6 * j
  if cmpid(ARGV[b + 1], last) > 0 then
    if not count then count = getcount(KEYS[1], KEYS[2]) end
    local fields = {'b', ARGV[b + 2], 't', ARGV[b + 3], 'n', ARGV[b + 4], 'f', ARGV[b]}
    if ARGV[b + 5] ~= '' then fields[#fields + 1] = 'r'; fields[#fields + 1] = ARGV[b + 5] end
    if token and token ~= '' then fields[#fields + 1] = 'o'; fields[#fields + 1] = token end
    redis.call('XADD', KEYS[1], ARGV[b + 1], unpack(fields))
    last = ARGV[b + 1]
    added = added + tonumber(ARGV[b + 4])
  end
end
if added > 0 then redis.call('HSET', KEYS[2], 'lastId', last, 'count', count + added) end
if ARGV[1] ~= '' and (added > 0 or empty or ARGV[3] == '1') then
  redis.call('HSET', KEYS[2], 'lastId', last, 'resume', ARGV[1], 'wholeId', last)
end
if added > 0 or empty then redis.call('HSETNX', KEYS[2], 'createdAt', ARGV[2]) end
if KEYS[4] then
  local mode = ARGV[p + 6 * m + 1]
  local n = 0
  if mode == 'each' then
    for j = 0, m - 1 do if cmpid(ARGV[p + 6 * j + 1], lastBefore) > 0 then n = n + 1 end end
  elseif mode == 'tx' and ARGV[1] ~= '' and (added > 0 or ARGV[3] == '1') then
    n = 1
  end
  if n > 0 then redis.call('INCRBY', KEYS[4], n) end
end
if token and token ~= '' then return {'added', added, lastBefore} end
return added
`;

/**
 * KEYS: stream, meta. ARGV: start ('-' or '(' .. since id), limit (changes),
 * since id ('' for none). Reads entries from `start` until they hold at least
 * `limit` changes after `since` (an entry that begins at or below `since`
 * counts as one: its changes up to `since` are skipped by the decoder), with
 * meta.trimmedId and meta.createdAt (the feed's generation), atomically:
 * {trimmedId or false, entries, createdAt or false}. Optional ARGV: a
 * local-echo token and the lowest and highest entry id the reader holds
 * (local-echo.ts): entries with that token (field `o`) and an id in that
 * range come back without their payload, as {n, f, l = '1'}.
 */
export const READ_LUA = `${CMP_ID}${ENTRY_COUNT}
local trimmed = redis.call('HGET', KEYS[2], 'trimmedId')
local start = ARGV[1]
local limit = tonumber(ARGV[2])
local since = ARGV[3]
local out = {}
local total = 0
local step = 1
while total < limit do
  local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', step)
  for _, entry in ipairs(batch) do
    out[#out + 1] = entry
    local n = entrycount(entry[2])
    local f = fieldof(entry[2], 'f')
    if since ~= '' and f and cmpid(f, since) <= 0 then n = 1 end
    total = total + n
    if total >= limit then break end
  end
  if #batch < step then break end
  start = '(' .. batch[#batch][1]
  if step < 256 then step = step * 2 end
end
local token = ARGV[4]
if token and token ~= '' then
  local lo, hi = ARGV[5], ARGV[6]
  for i, entry in ipairs(out) do
    local f = entry[2]
    if fieldof(f, 'o') == token and cmpid(entry[1], lo) >= 0 and cmpid(entry[1], hi) <= 0 then
      out[i] = {entry[1], {'n', fieldof(f, 'n') or '1', 'f', fieldof(f, 'f') or entry[1], 'l', '1'}}
    end
  end
end
return {trimmed or false, out, redis.call('HGET', KEYS[2], 'createdAt') or false}
`;

/**
 * KEYS: stream, meta. ARGV: maxChanges (-1 = none), cutoff commit time ms
 * (-1 = none), batch, keep floor id. Drops whole entries (append pieces) from
 * the head while the changes left stay at or above maxChanges, or while the
 * head entry's commit time is below the cutoff, at most `batch` entries per
 * call (the caller loops), so one call never blocks Redis long. A count
 * policy therefore keeps up to one piece more than maxChanges.
 * Age is judged on the entry's `t` field (commit time), not its id: ids are
 * LSN-based, not timestamps. Walking from the head stops at the first entry
 * young enough, so retention never cuts a hole in the middle of the feed even
 * if commit times are not perfectly monotonic.
 * Records meta.trimmedId = the highest id removed and lowers meta.count.
 * Returns {changes removed, entries removed}.
 */
export const TRIM_LUA = `${ENTRY_COUNT}
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
if len == 0 or (maxc < 0 and cutoff < 0) then return {0, 0} end
local count = getcount(KEYS[1], KEYS[2])
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', batch)
local removed = 0
local changes = 0
local lastRemoved
for i, entry in ipairs(entries) do
  local n = entrycount(entry[2])
  -- By count: a whole entry goes only while the changes left stay at or above maxChanges.
  local drop = maxc >= 0 and count - changes - n >= maxc
  if not drop and cutoff >= 0 then
    local t = fieldof(entry[2], 't')
    drop = t ~= nil and tonumber(t) < cutoff
  end
  if drop and keep ~= nil and keep ~= '' and not le(entry[1], keep) then drop = false end
  if not drop then break end
  removed = i
  changes = changes + n
  lastRemoved = entry[1]
end
if removed == 0 then return {0, 0} end
-- The removed entries are exactly the oldest ones, so an exact MAXLEN trim drops precisely them.
redis.call('XTRIM', KEYS[1], 'MAXLEN', len - removed)
redis.call('HSET', KEYS[2], 'trimmedId', lastRemoved, 'count', count - changes)
return {changes, removed}
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
redis.call('HSET', KEYS[2], 'lastId', gap, 'trimmedId', gap, 'count', 0, 'wholeId', gap)
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

  async run(redis: Redis, keys: string[], args: (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }

  /** run() with the reply's strings as Buffers (a binary feed piece is not text). */
  async runBuffer(redis: Redis, keys: string[], args: (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await redis.callBuffer('evalsha', [this.sha, keys.length, ...keys, ...args]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.callBuffer('eval', [this.source, keys.length, ...keys, ...args]);
    }
  }
}
