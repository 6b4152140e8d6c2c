/**
 * ChangeFeed over one Redis Stream per feed.
 *
 * Layout (see feed-keys.ts): the stream holds one entry per change, with id
 * toStreamId(sequence) ("<hi*2^32+lo>-<index>", so Redis orders entries in
 * commit order) and three fields: `e` = the event as JSON without its
 * columns, `t` = its commit time in ms (read by age retention without parsing
 * `e`), `c` = the id of its column set, stored once in the columns hash (see
 * column-sets.ts: that halves the memory per change). The meta hash holds:
 *   lastId     stream id of the newest change ever appended (the "last" bound;
 *              survives trimming and an empty stream)
 *   trimmedId  stream id of the newest change removed by retention
 *   resume     JSON of the resume position of the last transaction appended
 *   createdAt  ms since the epoch of the first append
 * Ids rather than sequences are stored because the Lua scripts compare them;
 * sequences are derived with fromStreamId.
 *
 * SNAPSHOT_TOO_OLD, exactly: a reader passing `since` has seen every change
 * up to and including `since`. It has missed something iff retention removed
 * a change with sequence > since, i.e. iff since < trimmedThrough (the
 * highest sequence ever removed). So read() throws SnapshotTooOldError when
 * since < trimmedThrough; since == trimmedThrough (or anything above) is fine.
 * `since = null` means "from the oldest retained change" and never throws;
 * "0.0.0" is an explicit position ("seen nothing") and throws once anything
 * was trimmed. The check and the XRANGE run in one MULTI, so a concurrent
 * trim cannot slip between them.
 */
import type { Redis } from 'ioredis';
import type { CapturedTransaction, ChangeEvent, ColumnType, SourcePosition } from '../change-event.ts';
import { compareSequences, fromStreamId, parseSequence, toStreamId, ZERO_SEQUENCE } from '../sequence.ts';
import { SnapshotTooOldError, type ChangeFeed, type FeedBounds, type RetentionPolicy } from './change-feed.ts';
import { FeedAppendError, FeedParameterError } from './feed-errors.ts';
import { ColumnSetCodec } from './column-sets.ts';
import { compareStreamIds, DEFAULT_FEED_PREFIX, feedKeys, type FeedKeys } from './feed-keys.ts';
import { APPEND_LUA, GAP_LUA, LuaScript, TRIM_LUA } from './feed-scripts.ts';
import { TailWatcher } from './tail-watcher.ts';

export interface RedisChangeFeedOptions {
  /** Connection for ordinary commands; owned by the caller (close() leaves it open). */
  redis: Redis;
  /** Feed name, `^[A-Za-z0-9_.-]{1,128}$`: the job name or environmentId. */
  name: string;
  /** Key prefix. Default 'tributary'. */
  prefix?: string;
  /** Changes removed per trim script call; bounds how long one call holds Redis. Default 1000. */
  trimBatch?: number;
  /** Longest single XREAD BLOCK of the tail watcher, ms. Default 5000. */
  blockSliceMs?: number;
  /** Clock for age retention (tests). Default Date.now. */
  now?: () => number;
}

/** Largest `limit` accepted by read(); the changeserver API caps at the same value. */
export const MAX_READ_LIMIT = 100_000;

/** Events per append script call: bounds the size of one Redis command and of the argument list built for it. */
export const APPEND_PIECE_EVENTS = 1_000;

const appendScript = new LuaScript(APPEND_LUA);
const trimScript = new LuaScript(TRIM_LUA);
const gapScript = new LuaScript(GAP_LUA);

type StreamEntry = [id: string, fields: string[]];

export class RedisChangeFeed implements ChangeFeed {
  readonly name: string;
  readonly prefix: string;
  readonly keys: FeedKeys;
  private readonly redis: Redis;
  private readonly trimBatch: number;
  private readonly now: () => number;
  private readonly watcher: TailWatcher;
  private readonly columnSets: ColumnSetCodec;
  private closing?: Promise<void>;

  constructor(opts: RedisChangeFeedOptions) {
    this.redis = opts.redis;
    this.name = opts.name;
    this.prefix = opts.prefix ?? DEFAULT_FEED_PREFIX;
    this.keys = feedKeys(this.prefix, opts.name); // validates the name
    this.trimBatch = opts.trimBatch ?? 1000;
    if (!Number.isInteger(this.trimBatch) || this.trimBatch < 1) throw new FeedParameterError('trimBatch', opts.trimBatch, 'expected a positive integer');
    this.now = opts.now ?? Date.now;
    this.columnSets = new ColumnSetCodec(this.keys.columns);
    this.watcher = new TailWatcher({ redis: this.redis, key: this.keys.stream, sliceMs: opts.blockSliceMs });
  }

  lastAppendBytes = 0;

  /**
   * Appends a transaction in pieces of at most APPEND_PIECE_EVENTS events, one
   * script call each (see APPEND_LUA): no Redis command, and no argument list
   * on the JS stack, grows with the transaction. Readers may see a prefix of a
   * large transaction before its last piece is in; each change still has its
   * own sequence, so appliers checkpoint inside it exactly as between
   * transactions. Only the last piece records the resume position.
   */
  async append(tx: CapturedTransaction): Promise<number> {
    let prev: string | undefined;
    for (const event of tx.events) {
      // Checked before anything is written: a script error halfway would leave a partial transaction.
      if (prev !== undefined && compareSequences(prev, event.sequence) >= 0) {
        throw new FeedAppendError(`transaction ${tx.txid}: sequence ${event.sequence} does not follow ${prev}`);
      }
      prev = event.sequence;
    }
    const resume = JSON.stringify(tx.resume);
    let added = 0;
    let bytes = 0;
    const total = tx.events.length;
    for (let from = 0; from < total || from === 0; from += APPEND_PIECE_EVENTS) {
      const to = Math.min(total, from + APPEND_PIECE_EVENTS);
      const piece = this.encodePiece(tx.events, from, to);
      bytes += piece.bytes;
      const lastPiece = to >= total;
      const args: (string | number)[] = [lastPiece && !tx.partial ? resume : '', this.now(), added > 0 ? '1' : '0', piece.sets.length / 2];
      for (const s of piece.sets) args.push(s);
      for (const e of piece.entries) args.push(e);
      added += (await appendScript.run(this.redis, [this.keys.stream, this.keys.meta, this.keys.columns], args)) as number;
      if (lastPiece) break;
    }
    this.lastAppendBytes = bytes;
    return added;
  }

  private encodePiece(events: ChangeEvent[], from: number, to: number): { sets: string[]; entries: (string | number)[]; bytes: number } {
    const sets = new Map<string, string>();
    const entries: (string | number)[] = [];
    let bytes = 0;
    for (let i = from; i < to; i++) {
      const event = events[i]!;
      const cols = this.columnSets.encode(event.columns);
      sets.set(cols.id, cols.json);
      const { columns: _omitted, ...rest } = event;
      const json = JSON.stringify(rest);
      bytes += json.length;
      entries.push(toStreamId(event.sequence), json, event.commitTime, cols.id);
    }
    const flat: string[] = [];
    for (const [id, json] of sets) flat.push(id, json);
    return { sets: flat, entries, bytes };
  }

  async resumePosition(): Promise<SourcePosition | null> {
    const raw = await this.redis.hget(this.keys.meta, 'resume');
    return raw ? (JSON.parse(raw) as SourcePosition) : null;
  }

  async read(since: string | null, limit: number): Promise<ChangeEvent[]> {
    checkLimit(limit);
    const sinceId = since === null ? null : toStreamId(checkSince(since));
    const res = await this.redis.multi()
      .hget(this.keys.meta, 'trimmedId')
      .xrange(this.keys.stream, sinceId === null ? '-' : `(${sinceId}`, '+', 'COUNT', limit)
      .exec();
    const [trimmedId, entries] = unwrap<[string | null, StreamEntry[]]>(res);
    if (sinceId !== null && trimmedId && compareStreamIds(sinceId, trimmedId) < 0) {
      throw new SnapshotTooOldError(since!, (await this.bounds()).first);
    }
    return this.decode(entries);
  }

  private async decode(entries: StreamEntry[]): Promise<ChangeEvent[]> {
    const raw = entries.map(([, fields]) => {
      let e: string | undefined;
      let c: string | undefined;
      for (let i = 0; i < fields.length; i += 2) {
        if (fields[i] === 'e') e = fields[i + 1];
        else if (fields[i] === 'c') c = fields[i + 1];
      }
      if (e === undefined) throw new Error(`feed ${this.name}: entry without an "e" field`);
      return { e, c };
    });
    const ids = new Set<string>();
    for (const r of raw) if (r.c !== undefined) ids.add(r.c);
    const sets = ids.size > 0 ? await this.columnSets.resolve(this.redis, ids) : new Map<string, ColumnType[]>();
    return raw.map(({ e, c }) => {
      const event = JSON.parse(e) as ChangeEvent;
      if (c !== undefined) event.columns = sets.get(c)!;
      return event;
    });
  }

  /**
   * Returns at once when changes are there; otherwise waits until one is
   * appended (then reads with the same since/limit), `blockMs` passes, or
   * `signal` aborts. Timeout and abort both return [] rather than throwing:
   * to a long-polling client both simply mean "nothing new yet".
   */
  async readBlocking(since: string | null, limit: number, blockMs: number, signal?: AbortSignal): Promise<ChangeEvent[]> {
    const deadline = Date.now() + Math.max(0, blockMs);
    for (;;) {
      const events = await this.read(since, limit);
      const left = deadline - Date.now();
      if (events.length > 0 || left <= 0 || signal?.aborted) return events;
      // since null with nothing read means the stream is empty: any entry will do.
      const woke = await this.watcher.wait(since === null ? '0-0' : toStreamId(since), left, signal);
      if (!woke) return signal?.aborted ? [] : this.read(since, limit);
    }
  }

  async bounds(): Promise<FeedBounds> {
    const res = await this.redis.multi()
      .xrange(this.keys.stream, '-', '+', 'COUNT', 1)
      .hget(this.keys.meta, 'lastId')
      .hget(this.keys.meta, 'wholeId')
      .exec();
    const [head, lastId, wholeId] = unwrap<[StreamEntry[], string | null, string | null]>(res);
    const last = lastId ? fromStreamId(lastId) : ZERO_SEQUENCE;
    // An empty stream keeps its bounds as a sentinel: everything up to `last` was delivered and trimmed.
    const first = head[0] ? fromStreamId(head[0][0]) : last;
    // Feeds written before wholeId existed say nothing: taken as whole.
    return !!lastId && !!wholeId && lastId !== wholeId ? { first, last, openTransaction: true } : { first, last };
  }

  /**
   * Drops changes beyond `maxChanges` (exactly, oldest first) and changes
   * whose commit time is older than now - maxAgeMs (walking from the oldest,
   * stopping at the first young enough one). Runs in batches of `trimBatch`,
   * each atomic, so readers and appenders interleave with a long trim.
   */
  async trim(policy: RetentionPolicy): Promise<number> {
    const maxChanges = policy.maxChanges ?? -1;
    if (policy.maxChanges !== undefined && (!Number.isInteger(maxChanges) || maxChanges < 0)) {
      throw new FeedParameterError('maxChanges', policy.maxChanges, 'expected a non-negative integer');
    }
    if (policy.maxAgeMs !== undefined && !(policy.maxAgeMs >= 0)) {
      throw new FeedParameterError('maxAgeMs', policy.maxAgeMs, 'expected a non-negative number');
    }
    const cutoff = policy.maxAgeMs === undefined ? -1 : Math.max(0, this.now() - policy.maxAgeMs);
    let total = 0;
    for (;;) {
      const keep = policy.keepAfter === undefined ? '' : toStreamId(checkSince(policy.keepAfter));
      const removed = (await trimScript.run(this.redis, [this.keys.stream, this.keys.meta], [maxChanges, cutoff, this.trimBatch, keep])) as number;
      total += removed;
      if (removed < this.trimBatch) return total;
    }
  }

  async length(): Promise<number> {
    return this.redis.xlen(this.keys.stream);
  }

  async markGap(): Promise<string> {
    return fromStreamId((await gapScript.run(this.redis, [this.keys.stream, this.keys.meta], [this.now()])) as string);
  }

  async destroy(): Promise<void> {
    await this.redis.del(this.keys.stream, this.keys.meta, this.keys.columns);
  }

  /** Stops the tail watcher and its blocking connection; pending readBlocking calls return []. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.watcher.close().catch(() => undefined);
    return this.closing;
  }
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) {
    throw new FeedParameterError('limit', limit, `expected an integer from 1 to ${MAX_READ_LIMIT}`);
  }
}

function checkSince(since: string): string {
  parseSequence(since); // throws InvalidSequenceError (code PARAMETER_INVALID)
  return since;
}

/** MULTI results as plain values; the first command error is thrown. */
function unwrap<T extends unknown[]>(res: [Error | null, unknown][] | null): T {
  if (!res) throw new Error('MULTI aborted');
  return res.map(([err, value]) => {
    if (err) throw err;
    return value;
  }) as T;
}
