/**
 * ChangeFeed over one Redis Stream per feed.
 *
 * Layout (see feed-keys.ts): the stream holds one entry per append piece
 * (up to APPEND_PIECE_EVENTS changes of one transaction). Its id is the
 * piece's LAST change's toStreamId(sequence) ("<hi*2^32+lo>-<index>", so
 * Redis orders entries in commit order, and the entries with id > since are
 * exactly those holding changes after `since`), with fields `b` = the
 * changes (feed-codec.ts, without their columns), `t` = commit time (read by
 * age retention without parsing `b`), `n` = number of changes and `f` = the
 * first change's id. Column sets are stored once in the columns hash (see
 * column-sets.ts). Entries of feeds written before pieces (`e` = one change
 * as JSON, `c` = its column set) are still read. The meta hash holds:
 *   lastId     stream id of the newest change ever appended (the "last" bound;
 *              survives trimming and an empty stream)
 *   trimmedId  stream id of the newest change removed by retention
 *   count      changes in the stream (XLEN counts entries)
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
import type { CapturedTransaction, ChangeEvent, SourcePosition } from '../change-event.ts';
import { firstOutOfOrder, fromStreamId, parseSequence, toStreamId, ZERO_SEQUENCE } from '../sequence.ts';
import { SnapshotTooOldError, type AppendOptions, type ChangeFeed, type FeedBounds, type RetentionPolicy } from './change-feed.ts';
import { isCluster } from '../redis-topology.ts';
import { FeedAppendError, FeedParameterError, FeedReplacedError } from './feed-errors.ts';
import { ColumnSetCodec } from './column-sets.ts';
import { compareStreamIds, DEFAULT_FEED_PREFIX, feedKeys, type FeedKeys } from './feed-keys.ts';
import { APPEND_LUA, GAP_LUA, LuaScript, READ_LUA, TRIM_LUA } from './feed-scripts.ts';
import { encodePiece, encodePieceBytes } from './feed-codec.ts';
import { appendedHere, TailWatcher } from './tail-watcher.ts';
import { ECHO_ROOM, ECHO_TOKEN, echoOf } from './local-echo.ts';
import { EchoReads, entriesOf, fieldOf, type StreamEntry } from './echo-reads.ts';
import { markCommitEstimate } from '../commit-clock.ts';
import { decodeEntries } from './feed-entries.ts';
import { SinkPool, type ByteSink } from '../byte-sink.ts';

/**
 * Sinks the append writes its pieces into (encodePieceBytes), used again from call to call so that their
 * pages are there already. A sink is taken per script call and given back once the call settled: until
 * then ioredis may still hold views of it (a command queued while the connection is down).
 */
const sinks = new SinkPool(256 * 1024, 16 * 1024 * 1024, 4);

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
  /**
   * This reader takes the pieces this process appended from memory instead
   * of reading them back (local-echo.ts); only the job's apply sets it,
   * with watchEcho running.
   */
  localEcho?: boolean;
}

/** Largest `limit` accepted by read(); the changeserver API caps at the same value. */
export const MAX_READ_LIMIT = 100_000;

/** Events per append script call: bounds the size of one Redis command and of the argument list built for it. */
export const APPEND_PIECE_EVENTS = 1_000;

const appendScript = new LuaScript(APPEND_LUA);
const trimScript = new LuaScript(TRIM_LUA);
const readScript = new LuaScript(READ_LUA);
const gapScript = new LuaScript(GAP_LUA);

export class RedisChangeFeed implements ChangeFeed {
  readonly name: string;
  readonly prefix: string;
  readonly keys: FeedKeys;
  /** KEYS of the append script: stream, meta, columns. */
  private readonly appendKeys: string[];
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
    this.appendKeys = [this.keys.stream, this.keys.meta, this.keys.columns];
    this.trimBatch = opts.trimBatch ?? 1000;
    if (!Number.isInteger(this.trimBatch) || this.trimBatch < 1) throw new FeedParameterError('trimBatch', opts.trimBatch, 'expected a positive integer');
    this.now = opts.now ?? Date.now;
    this.columnSets = new ColumnSetCodec(this.keys.columns);
    this.watcher = new TailWatcher({ redis: this.redis, key: this.keys.stream, sliceMs: opts.blockSliceMs });
    this.localEcho = opts.localEcho ?? false;
    this.echoReads = new EchoReads({
      redis: this.redis, keys: this.keys, name: this.name,
      decode: (entries, sinceId) => this.decode(entries, sinceId),
      readStored: async (sinceId, limit) => entriesOf(((await readScript.runBuffer(this.redis, [this.keys.stream, this.keys.meta], [`(${sinceId}`, limit, sinceId])) as unknown[])[1]),
    });
  }

  private readonly localEcho: boolean;
  private readonly echoReads: EchoReads;
  /** Pieces this reader took from memory, and fetched again because memory no longer held them (tests, traces). */
  get echoStats(): EchoReads['stats'] { return this.echoReads.stats; }

  lastAppendBytes = 0;
  /** The feed's createdAt (its generation) as the last read() saw it, read atomically with the changes. */
  lastReadGeneration: string | null | undefined;

  /**
   * Appends a transaction in pieces of at most APPEND_PIECE_EVENTS events, one
   * script call each (see APPEND_LUA): no Redis command, and no argument list
   * on the JS stack, grows with the transaction. Readers may see a prefix of a
   * large transaction before its last piece is in; each change still has its
   * own sequence, so appliers checkpoint inside it exactly as between
   * transactions. Only the last piece records the resume position.
   */
  async append(tx: CapturedTransaction, opts: AppendOptions = {}): Promise<number> {
    // Checked before anything is written: a script error halfway would leave a partial transaction.
    checkOrder(tx);
    const resume = JSON.stringify(tx.resume);
    let added = 0;
    let bytes = 0;
    const total = tx.events.length;
    for (let from = 0; from < total || from === 0; from += APPEND_PIECE_EVENTS) {
      let start = from;
      const to = Math.min(total, from + APPEND_PIECE_EVENTS);
      const lastPiece = to >= total;
      for (;;) {
        const sets = new Map<string, string>();
        const args: (string | number | Buffer)[] = [lastPiece && !tx.partial ? resume : '', this.now(), added > 0 ? '1' : '0', opts.generation ?? ''];
        const echo = opts.generation ? echoOf(this.keys.stream) : undefined;
        const sink = sinks.take();
        if (start < to) {
          const piece = this.pieceArgs(tx, start, to, sets, sink);
          bytes += piece.bytes;
          args.push(sets.size);
          for (const [id, json] of sets) args.push(id, json);
          args.push(1, ...piece.args);
        } else {
          args.push(0, 0);
        }
        const counted = lastPiece && !tx.partial ? this.countKeys(opts) : undefined;
        echo?.appendStarted();
        let res: AppendResult;
        try {
          res = await this.runAppend(sink, counted, echo !== undefined, 'tx', args);
          // Held only when added in full: then the entry is exactly these events.
          if (!Array.isArray(res) && echo && start < to && res.added === to - start && res.prev !== undefined) this.hold(tx, start, to, opts.generation!, res.prev);
        } finally {
          echo?.appendSettled();
        }
        if (!Array.isArray(res)) {
          if (res.added > 0) appendedHere(this.keys.stream, toStreamId(tx.events[to - 1]!.sequence));
          added += res.added;
          if (lastPiece && !tx.partial && added > 0 && opts.countInto && !counted) this.countApart(opts.countInto, 1);
          break;
        }
        if (res[0] === 'replaced') throw new FeedReplacedError(this.name, String(res[1]));
        // The feed already holds this piece up to lastId (a crash between pieces): append only what is above it.
        const lastId = String(res[1]);
        while (start < to && compareStreamIds(toStreamId(tx.events[start]!.sequence), lastId) <= 0) start++;
      }
      if (lastPiece) break;
    }
    this.lastAppendBytes = bytes;
    return added;
  }

  localRoom(signal: AbortSignal): Promise<void> {
    const echo = echoOf(this.keys.stream);
    return echo ? echo.room(ECHO_ROOM, signal) : Promise.resolve();
  }

  /**
   * Several whole transactions in one script call, each its own entry, when
   * together they fit one piece (small transactions: one round trip for all
   * of them instead of one each); otherwise, or when the feed already holds
   * part of them, one append() each. Returns the changes added.
   */
  async appendMany(txs: CapturedTransaction[], opts: AppendOptions = {}): Promise<number> {
    const total = txs.reduce((n, t) => n + t.events.length, 0);
    if (txs.length < 2 || total > APPEND_PIECE_EVENTS || txs.some((t) => t.partial)) return this.appendEach(txs, opts);
    let prev: string | undefined;
    for (const tx of txs) {
      checkOrder(tx, prev);
      if (tx.events.length) prev = tx.events[tx.events.length - 1]!.sequence;
    }
    const sets = new Map<string, string>();
    const pieces: (string | number | Buffer)[] = [];
    let bytes = 0;
    let m = 0;
    const sink = sinks.take();
    for (const tx of txs) {
      if (tx.events.length === 0) continue;
      const piece = this.pieceArgs(tx, 0, tx.events.length, sets, sink);
      bytes += piece.bytes;
      pieces.push(...piece.args);
      m++;
    }
    const args: (string | number | Buffer)[] = [JSON.stringify(txs.at(-1)!.resume), this.now(), '0', opts.generation ?? '', sets.size];
    for (const [id, json] of sets) args.push(id, json);
    args.push(m, ...pieces);
    const echo = opts.generation ? echoOf(this.keys.stream) : undefined;
    const counted = this.countKeys(opts);
    echo?.appendStarted();
    let res: AppendResult;
    try {
      res = await this.runAppend(sink, counted, echo !== undefined, 'each', args);
      if (!Array.isArray(res) && echo && res.added === total && res.prev !== undefined) {
        // All added, each its own entry right after the one before it.
        let prevId = res.prev;
        for (const tx of txs) {
          if (tx.events.length === 0) continue;
          this.hold(tx, 0, tx.events.length, opts.generation!, prevId);
          prevId = toStreamId(tx.events.at(-1)!.sequence);
        }
      }
    } finally {
      echo?.appendSettled();
    }
    if (Array.isArray(res)) {
      if (res[0] === 'replaced') throw new FeedReplacedError(this.name, String(res[1]));
      return this.appendEach(txs, opts);
    }
    if (opts.countInto && !counted) {
      // The transactions added are the batch's tail (what the feed held already is a prefix).
      let left = res.added; let n = 0;
      for (let i = txs.length - 1; i >= 0 && left > 0; i--) { if (txs[i]!.events.length) { left -= txs[i]!.events.length; n++; } }
      this.countApart(opts.countInto, n);
    }
    if (res.added > 0) {
      const last = txs.findLast((t) => t.events.length > 0)!;
      appendedHere(this.keys.stream, toStreamId(last.events.at(-1)!.sequence));
    }
    this.lastAppendBytes = bytes;
    return res.added;
  }

  /**
   * The append script with its trailing arguments (the echo token; with `counted` keys, the count mode), its
   * sink given back once the call settled (until then ioredis may hold views of it).
   */
  private async runAppend(sink: ByteSink, counted: string[] | undefined, echo: boolean, mode: 'tx' | 'each', args: (string | number | Buffer)[]): Promise<AppendResult> {
    if (counted) args.push(echo ? ECHO_TOKEN : '', mode);
    else if (echo) args.push(ECHO_TOKEN);
    let res: unknown;
    try {
      res = await appendScript.run(this.redis, counted ?? this.appendKeys, args);
    } finally {
      sinks.give(sink);
    }
    if (!Array.isArray(res)) return { added: Number(res) };
    if (res[0] === 'added') return { added: Number(res[1]), prev: String(res[2]) };
    return [String(res[0]), String(res[1])];
  }

  /** The append script's keys with `opts.countInto` as the fourth, where one script may touch it (not on a Cluster: another slot). */
  private countKeys(opts: AppendOptions): string[] | undefined {
    return opts.countInto && !isCluster(this.redis) ? [...this.appendKeys, opts.countInto] : undefined;
  }

  /** On a Cluster the count goes up by a command of its own after the append (not awaited, as before the script did it). */
  private countApart(key: string, n: number): void {
    if (n > 0) this.redis.incrby(key, n).catch(() => undefined);
  }

  private async appendEach(txs: CapturedTransaction[], opts: AppendOptions): Promise<number> {
    let added = 0;
    let bytes = 0;
    for (const tx of txs) { added += await this.append(tx, opts); bytes += this.lastAppendBytes; }
    this.lastAppendBytes = bytes;
    return added;
  }

  /** Keeps events[start, to) of `tx`, just appended as one entry, for this process's apply (local-echo.ts). */
  private hold(tx: CapturedTransaction, start: number, to: number, generation: string, prev: string): void {
    const events = start === 0 && to === tx.events.length ? tx.events : tx.events.slice(start, to);
    if (tx.commitEstimate !== undefined) markCommitEstimate(events, tx.commitEstimate);
    // The entry's text is made again only if the piece outlives its objects: the bytes appended were in a reused sink.
    const toText = (): string => encodePiece(events, 0, events.length, (columns) => this.columnSets.encode(columns).id);
    echoOf(this.keys.stream)?.hold(toStreamId(tx.events[to - 1]!.sequence), {
      first: toStreamId(tx.events[start]!.sequence), prev, events, text: undefined, toText, estimate: tx.commitEstimate, count: to - start, generation,
    });
  }

  /** The script arguments of events[start, to) of `tx` as one piece; column sets collected into `sets`. */
  private pieceArgs(tx: CapturedTransaction, start: number, to: number, sets: Map<string, string>, sink: ByteSink): { args: (string | number | Buffer)[]; bytes: number } {
    const at = sink.len;
    encodePieceBytes(sink, tx.events, start, to, (columns) => {
      const cs = this.columnSets.encode(columns);
      sets.set(cs.id, cs.json);
      return cs.id;
    }, tx.wire);
    // As a Buffer: ioredis writes it as is, where a string argument is concatenated into the command text first.
    // A view of the sink: ioredis copies it when it writes the command, and the sink is used again only after
    // the script call settled (a grown sink leaves earlier views on its previous buffer, which is not reused).
    return {
      args: [toStreamId(tx.events[start]!.sequence), toStreamId(tx.events[to - 1]!.sequence), sink.buf.subarray(at, sink.len), tx.events[start]!.commitTime, to - start, tx.commitEstimate ?? ''],
      bytes: sink.len - at,
    };
  }

  async resumePosition(): Promise<SourcePosition | null> {
    const raw = await this.redis.hget(this.keys.meta, 'resume');
    return raw ? (JSON.parse(raw) as SourcePosition) : null;
  }

  async read(since: string | null, limit: number): Promise<ChangeEvent[]> {
    checkLimit(limit);
    const sinceId = since === null ? null : toStreamId(checkSince(since));
    const args: (string | number)[] = [sinceId === null ? '-' : `(${sinceId}`, limit, sinceId ?? ''];
    const echo = this.localEcho ? echoOf(this.keys.stream) : undefined;
    if (echo && sinceId !== null) {
      echo.dropThrough(sinceId);
      // Woken (by Redis) for an append of this process's whose answer has not come back yet: it is held in a moment.
      if (echo.appending > 0 && echo.nothingAfter(sinceId)) await echo.appendsSettled();
      const fromHeld = await this.echoReads.readHeld(echo, sinceId, limit);
      if (fromHeld) {
        this.lastReadGeneration = fromHeld.generation;
        return fromHeld.events.length > limit ? fromHeld.events.slice(0, limit) : fromHeld.events;
      }
    }
    const held = echo?.range();
    if (held) args.push(ECHO_TOKEN, held[0], held[1]);
    // As bytes: a binary piece is not text (echo-reads.ts entriesOf).
    const res = (await readScript.runBuffer(this.redis, [this.keys.stream, this.keys.meta], args)) as [Buffer | null, unknown, Buffer | null];
    const trimmedId = res[0] ? res[0].toString('latin1') : null;
    const entries = entriesOf(res[1]);
    const createdAt = res[2] ? res[2].toString('latin1') : null;
    this.lastReadGeneration = createdAt ?? null;
    if (sinceId !== null && trimmedId && compareStreamIds(sinceId, trimmedId) < 0) {
      throw new SnapshotTooOldError(since!, (await this.bounds()).first);
    }
    if (held) await this.echoReads.fillEchoed(entries, createdAt);
    const events = await this.decode(entries, sinceId);
    return events.length > limit ? events.slice(0, limit) : events;
  }

  /** Entries -> events (feed-entries.ts), column sets resolved from this feed's hash. */
  private decode(entries: StreamEntry[], sinceId: string | null): Promise<ChangeEvent[]> {
    return decodeEntries(this.name, entries, sinceId, (ids) => this.columnSets.resolve(this.redis, ids));
  }

  /**
   * Returns at once when changes are there; otherwise waits until one is
   * appended (then reads with the same since/limit), `blockMs` passes, or
   * `signal` aborts. Timeout and abort both return [] rather than throwing:
   * to a long-polling client both simply mean "nothing new yet".
   */
  async readBlocking(since: string | null, limit: number, blockMs: number, signal?: AbortSignal): Promise<ChangeEvent[]> {
    const deadline = Date.now() + Math.max(0, blockMs);
    // An apply whose capture runs in this process and has appended nothing after `since` (FeedEcho.nothingAfter)
    // waits for the next append before it reads: the read script would only answer "nothing" (issue 12: one of
    // the round trips every batch of single-row transactions paid). The wait returns at once when the feed holds
    // anything after `since`, whoever appended it; a wait that ends without an append still reads.
    let waitFirst = blockMs > 0 && since !== null && this.localEcho && (echoOf(this.keys.stream)?.nothingAfter(toStreamId(since)) ?? false);
    for (;;) {
      const events = waitFirst ? [] : await this.read(since, limit);
      waitFirst = false;
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
    const headFirst = head[0] ? (fieldOf(head[0][1], 'f') ?? head[0][0]) : undefined;
    const first = headFirst ? fromStreamId(headFirst) : last;
    // Feeds written before wholeId existed say nothing: taken as whole.
    return !!lastId && !!wholeId && lastId !== wholeId ? { first, last, openTransaction: true } : { first, last };
  }

  /**
   * Drops changes beyond `maxChanges` (oldest first, whole pieces: up to one piece more stays) and changes
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
      const [changes, entries] = (await trimScript.run(this.redis, [this.keys.stream, this.keys.meta], [maxChanges, cutoff, this.trimBatch, keep])) as [number, number];
      total += changes;
      if (entries < this.trimBatch) return total;
    }
  }

  /** Changes in the stream (meta.count; XLEN for a feed written before pieces, one change per entry). */
  async length(): Promise<number> {
    const [count, len] = unwrap<[string | null, number]>(await this.redis.multi().hget(this.keys.meta, 'count').xlen(this.keys.stream).exec());
    return count === null ? len : Number(count);
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

/** Throws unless each of `tx`'s changes follows the one before it (the first one `prev`, when given). */
function checkOrder(tx: CapturedTransaction, prev?: string): void {
  const at = firstOutOfOrder(tx.events, sequenceOfEvent, 0, prev);
  if (at >= 0) {
    const before = at > 0 ? tx.events[at - 1]!.sequence : prev;
    throw new FeedAppendError(`transaction ${tx.txid}: sequence ${tx.events[at]!.sequence} does not follow ${before}`);
  }
}

const sequenceOfEvent = (e: ChangeEvent): string => e.sequence;

/** The append script's answer: the changes added (and, with an echo token, the feed's last id before them), or straddle/replaced. */
type AppendResult = { added: number; prev?: string } | [string, string];

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
