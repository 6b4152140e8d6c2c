/**
 * Incremental snapshots while streaming: the DBLog / Debezium watermark
 * method, run inside the capture task next to the stream
 * (docs/consistency.md, "Incremental snapshots").
 *
 * For each key-ordered chunk of a requested table:
 * 1. low watermark: a window opens at a transaction boundary of the stream;
 *    from then on every change the stream appends for that table is noted
 *    (its key; keyless tables: the change itself);
 * 2. the chunk is read with the engine's snapshot reader (its own
 *    connection and snapshot) while the stream keeps appending;
 * 3. high watermark: at the next transaction boundary the chunk is appended
 *    to the feed as one synthetic transaction and the window closes. Keyed
 *    rows whose key the window saw are dropped from it (the stream already
 *    carried a change at least as new, and later changes follow it in the
 *    feed); the rest are upserts (insert events). Keyless tables are copied
 *    whole: TRUNCATE, the rows, then the window's changes the copy's
 *    snapshot does not hold; the stream's later changes the copy holds are
 *    not appended (snapshot-cover.ts).
 * The chunk sits in the feed between two source transactions, so the apply's
 * per-row order holds for it as for any change. Progress is saved after each
 * chunk; a chunk appended twice (a kill between its append and the save) is
 * harmless: upserts, and TRUNCATE before a keyless copy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CapturedTransaction, ChangeEvent, Row, SourceKind, SourcePosition } from '../change-event.ts';
import { Operation } from '../change-event.ts';
import type { ChangeFeed } from '../feed/change-feed.ts';
import { matchesFilter, type TableFilter } from '../connection-config.ts';
import type { Logger } from '../logger.ts';
import { formatSequence, makeSequence, parseSequence } from '../sequence.ts';
import type { SnapshotReader } from '../snapshot/snapshot-reader.ts';
import { parseCover, type Cover } from '../snapshot/snapshot-cover.ts';
import { IncrementalStatus, type IncrementalRequest, type IncrementalRequestStore } from '../snapshot/incremental-request.ts';
import type { TableInfo } from '../table-info.ts';
import { compileRowFilter } from './row-filter.ts';

/** Serialises the stream's appends with the snapshotter's (a chunk goes in between two transactions). */
export class AppendLock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export interface IncrementalSnapshotterOptions {
  source: SourceKind;
  feed: ChangeFeed;
  reader: SnapshotReader;
  store: IncrementalRequestStore;
  lock: AppendLock;
  logger: Logger;
  /** The job run of the capture task (requests may wait for a later run). */
  runId: number;
  /** What the job captures: only those tables are copied (a schema-wide request takes just its captured tables). */
  captured: TableFilter;
  /** Rows per chunk (the job's chunkRows). */
  chunkRows: number;
  /** Where a synthetic transaction resumes when the feed has no resume position yet. */
  fallbackResume: SourcePosition;
  /** Create a table at the destination before its first chunk (absent for feed-only jobs). */
  ensureTable?: (t: TableInfo) => Promise<void>;
  /** After each chunk and state change: for job.progress. */
  onProgress?: (req: IncrementalRequest) => Promise<void>;
  /** A chunk's synthetic transaction was appended (count it like a captured one). */
  onAppended?: (tx: CapturedTransaction, added: number) => void;
  /** How often to look for new requests. Default 1000 ms. */
  pollMs?: number;
}

interface Window {
  table: string;
  keyed: boolean;
  /** Keys of the table's changes the stream appended since the low watermark. */
  keys: Set<string>;
  /** Keyless table: its changes the stream appended since the low watermark. */
  events: ChangeEvent[];
  /** A DDL of the table since the low watermark: the chunk is read again. */
  ddl: boolean;
  /** The stream's last transactions before the low watermark (one change each): the read must hold them. */
  before: ChangeEvent[];
}

/** How many of the stream's last transactions a chunk's read is checked against. */
const RECENT_TRANSACTIONS = 32;
/** copyChunk: the table changed shape (DDL) while the chunk was read. */
const SHAPE_CHANGED = 'shape-changed' as const;
/** How long the covers of a keyless copy stay in force (see addCovers). */
const COVER_TTL_MS = 24 * 3600_000;
/** Reads in a row that may miss them before the request fails (at 50 ms apart). */
const MAX_MISSED_READS = 200;

const READ_BATCH = 5000;

export class IncrementalSnapshotter {
  private window?: Window;
  /** A large transaction is being appended in pieces: no chunk may go in between. */
  private midTransaction = false;
  private covers = new Map<string, (Cover & { text: string; until: number })[]>();
  /** One change of each of the stream's last transactions (see Window.before). */
  private recent: ChangeEvent[] = [];
  private missStreak = 0;
  readonly lock: AppendLock;

  constructor(private readonly o: IncrementalSnapshotterOptions) {
    this.lock = o.lock;
  }

  /** Load the covers of earlier keyless copies (they stay in force after a restart). */
  async init(): Promise<void> {
    for (const r of await this.o.store.list()) this.addCovers(r);
  }

  /**
   * The stream's filter, called under the lock before an append: drops
   * changes a keyless copy already holds.
   */
  filter(tx: CapturedTransaction): CapturedTransaction {
    if (this.covers.size === 0) return tx;
    const events = tx.events.filter((e) => {
      if (e.key.length > 0 || e.op === Operation.Ddl) return true;
      const covers = this.covers.get(`${e.schema}.${e.table}`);
      return !covers || !covers.some((c) => c.until > Date.now() && c.holds(e));
    });
    return events.length === tx.events.length ? tx : { ...tx, events };
  }

  /** Called under the lock after each stream append: note what the open window sees. */
  observe(tx: CapturedTransaction): void {
    this.midTransaction = tx.partial === true;
    const first = tx.events[0];
    if (first) {
      this.recent.push(first);
      if (this.recent.length > RECENT_TRANSACTIONS) this.recent.shift();
    }
    const w = this.window;
    if (!w) return;
    for (const e of tx.events) {
      if (`${e.schema}.${e.table}` !== w.table) continue;
      if (e.op === Operation.Ddl) { w.ddl = true; continue; }
      if (w.keyed) {
        for (const img of [e.before, e.after]) if (img) w.keys.add(keyOf(e.key, img));
      } else {
        w.events.push(e);
      }
    }
  }

  /** Runs requests until `signal` aborts. Errors of one request fail it (stored) and the loop goes on. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const req = await this.o.store.active(this.o.runId);
      if (!req) { await sleep(this.o.pollMs ?? 1000, undefined, { signal }).catch(() => undefined); continue; }
      try {
        await this.runRequest(req, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (isRetriable(err)) throw err;
        req.status = IncrementalStatus.Failed;
        req.error = (err as Error).message;
        req.finishedAt = new Date().toISOString();
        await this.o.store.save(req);
        await this.o.onProgress?.(req);
        this.o.logger.warn({ request: req.id, err: req.error }, 'incremental snapshot failed');
      }
    }
  }

  private async runRequest(req: IncrementalRequest, signal: AbortSignal): Promise<void> {
    if (!req.tables) {
      const tables = (await this.o.reader.listTables(req.filter)).filter((t) => matchesFilter(this.o.captured, t.schema, t.table));
      if (req.where && tables.some((t) => t.key.length === 0)) {
        throw new Error(`where needs tables with a key; keyless: ${tables.filter((t) => t.key.length === 0).map((t) => `${t.schema}.${t.table}`).join(', ')}`);
      }
      for (const t of tables) compileRowFilter(req.where, t, this.o.source);
      req.tables = tables;
      req.rowsEstimated = tables.reduce((n, t) => n + t.estimatedRows, 0);
      req.status = IncrementalStatus.Running;
      await this.o.store.save(req);
      await this.o.onProgress?.(req);
    }
    while (!signal.aborted) {
      const table = req.tables[req.tableIndex];
      if (!table) break;
      if (!req.chunks) {
        await this.o.ensureTable?.(table);
        req.chunks = table.key.length > 0 ? await this.o.reader.planChunks(table, this.o.chunkRows) : [{ index: 0 }];
        req.chunkIndex = 0;
        req.chunksTotal += req.chunks.length;
        await this.o.store.save(req);
      }
      const chunk = req.chunks[req.chunkIndex];
      if (!chunk) {
        req.tableIndex += 1;
        req.chunks = undefined;
        await this.o.store.save(req);
        continue;
      }
      const rows = await this.copyChunk(req, table, chunk, signal);
      if (rows === SHAPE_CHANGED) {
        // Read the chunk again with the table's columns as they are now.
        const [fresh] = await this.o.reader.listTables({ schemas: [{ schema: table.schema, tables: [table.table] }] });
        if (!fresh) throw new Error(`table ${table.schema}.${table.table} is gone`);
        req.tables[req.tableIndex] = { ...fresh, estimatedRows: table.estimatedRows };
        await this.o.store.save(req);
        continue;
      }
      if (rows === undefined) continue; // read again (the read missed the stream's last commits) or aborted
      req.chunkIndex += 1;
      req.chunksDone += 1;
      req.rowsDone += rows;
      await this.o.store.save(req);
      await this.o.onProgress?.(req);
    }
    if (signal.aborted) return;
    req.status = IncrementalStatus.Done;
    req.finishedAt = new Date().toISOString();
    req.chunks = undefined;
    await this.o.store.save(req);
    await this.o.onProgress?.(req);
    this.o.logger.info({ request: req.id, rows: req.rowsDone, chunks: req.chunksDone }, 'incremental snapshot done');
  }

  /** One chunk between watermarks; the rows appended, or undefined when it must be read again (or the task stops). */
  private async copyChunk(req: IncrementalRequest, table: TableInfo, chunk: NonNullable<IncrementalRequest['chunks']>[number], signal: AbortSignal): Promise<number | typeof SHAPE_CHANGED | undefined> {
    const name = `${table.schema}.${table.table}`;
    const keyed = table.key.length > 0;
    const predicate = compileRowFilter(req.where, table, this.o.source);
    // Low watermark: at a transaction boundary.
    await this.atBoundary(signal, async () => {
      this.window = { table: name, keyed, keys: new Set(), events: [], ddl: false, before: [...this.recent] };
      return true;
    });
    try {
      const rows: Row[] = [];
      let coverText: string | undefined;
      for await (const batch of this.o.reader.readChunk(table, chunk, READ_BATCH, { onCover: (c) => { coverText = c; }, coverKeyed: true })) {
        if (signal.aborted) return undefined;
        for (const r of batch) if (!predicate || predicate(r) === true) rows.push(r);
      }
      if (!keyed && !coverText) throw new Error(`keyless table ${name}: the source cannot say which changes a copy holds (MySQL without binlog_snapshot_position)`);
      // The read must hold every transaction the stream appended before the low watermark. A commit is sent
      // to the capture a moment before a new snapshot sees it (WAL flush before the proc array, binlog before
      // the engine commit); a read that missed one would copy a row older than the stream already applied.
      const cover = coverText ? parseCover(coverText) : null;
      const checkable = (e: ChangeEvent) => !coverText!.startsWith('pgsnap') || /^[1-9]\d*$/.test(e.txid);
      const missed = cover ? this.window!.before.filter((e) => checkable(e) && !cover.holds(e)) : [];
      if (missed.length > 0) {
        if (++this.missStreak > MAX_MISSED_READS) throw new Error(`chunk of ${name}: ${MAX_MISSED_READS} reads in a row did not see transactions the stream already carried (${missed[0]!.txid})`);
        this.o.logger.info({ table: name, missed: missed.length }, 'chunk read before the stream\'s last commits were visible: reading it again');
        await sleep(50);
        return undefined;
      }
      this.missStreak = 0;
      // High watermark: append the chunk at the next transaction boundary.
      let appended: number | typeof SHAPE_CHANGED | undefined;
      await this.atBoundary(signal, async () => {
        if ((await this.o.feed.bounds()).openTransaction) return false;
        const w = this.window!;
        this.window = undefined;
        if (w.ddl) { this.o.logger.info({ table: name }, 'schema changed during the chunk read: reading it again'); appended = SHAPE_CHANGED; return true; }
        const events = keyed
          ? rows.filter((r) => !w.keys.has(keyOf(table.key, r))).map((r) => this.rowEvent(table, r))
          : this.keylessEvents(table, rows, w, coverText!);
        if (!keyed) {
          req.covers = { ...(req.covers ?? {}), [name]: coverText! };
          this.addCovers(req);
        }
        await this.appendSynthetic(req, events);
        appended = keyed ? events.length : rows.length;
        return true;
      });
      return appended;
    } finally {
      this.window = undefined;
    }
  }

  /** TRUNCATE, the copy, then the window's changes the copy does not hold (keyless copies are whole tables). */
  private keylessEvents(table: TableInfo, rows: Row[], w: Window, coverText: string): ChangeEvent[] {
    const cover = parseCover(coverText)!;
    const q = this.o.source === 'postgres' ? (s: string) => `"${s.replace(/"/g, '""')}"` : (s: string) => `\`${s.replace(/`/g, '``')}\``;
    const truncate: ChangeEvent = { ...this.rowEvent(table, {}), op: Operation.Ddl, after: null, ddl: `TRUNCATE TABLE ${q(table.schema)}.${q(table.table)}` };
    return [truncate, ...rows.map((r) => this.rowEvent(table, r)), ...w.events.filter((e) => !cover.holds(e)).map((e) => ({ ...e }))];
  }

  private rowEvent(table: TableInfo, row: Row): ChangeEvent {
    return {
      source: this.o.source, sequence: '', txid: '0', commitSequence: '0', index: 0, op: Operation.Insert,
      schema: table.schema, table: table.table, key: table.key, before: null, after: row, columns: table.columns, commitTime: Date.now(),
    };
  }

  /**
   * Append events as one transaction right after the feed's last change:
   * sequences continue the last one's index, so they sort before the next
   * source transaction (whose commit position is higher).
   */
  private async appendSynthetic(req: IncrementalRequest, events: ChangeEvent[]): Promise<void> {
    if (events.length === 0) return;
    const last = parseSequence((await this.o.feed.bounds()).last);
    const resume = (await this.o.feed.resumePosition()) ?? this.o.fallbackResume;
    const now = Date.now();
    const commitSequence = ((last.hi << 32n) + last.lo).toString();
    // Not a source transaction: txid 0, which no reader takes for one (covers and snapshot filters hold it
    // in no snapshot's favour, changeserver sends no transactionID); the request id goes to the log.
    const txid = '0';
    this.o.logger.debug({ request: req.id, events: events.length, after: formatSequence(last) }, 'chunk appended');
    const out = events.map((e, i) => ({ ...e, sequence: makeSequence(last.hi, last.lo, last.index + 1n + BigInt(i)), txid, commitSequence, index: i, commitTime: now }));
    const tx: CapturedTransaction = { txid, commitSequence, commitTime: now, resume, events: out };
    const added = await this.o.feed.append(tx);
    this.o.onAppended?.(tx, added);
  }

  /**
   * Run `fn` under the append lock at a transaction boundary (never between
   * pieces of a large transaction), again after a moment while it returns false.
   */
  private async atBoundary(signal: AbortSignal, fn: () => Promise<boolean>): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new AbortedChunk();
      const ran = await this.o.lock.run(async () => (this.midTransaction ? false : fn()));
      if (ran) return;
      await sleep(20);
    }
  }

  /**
   * The covers of a request's keyless copies go into force for COVER_TTL_MS
   * from when the request finished (or now): the changes a copy holds were
   * committed before it was read and reach the stream soon after, and a PostgreSQL
   * cover must not outlive the xid range it can judge.
   */
  private addCovers(req: IncrementalRequest): void {
    const until = (req.finishedAt ? Date.parse(req.finishedAt) : Date.now()) + COVER_TTL_MS;
    if (until < Date.now()) return;
    for (const [table, text] of Object.entries(req.covers ?? {})) {
      const list = (this.covers.get(table) ?? []).filter((c) => c.until > Date.now() && c.text !== text);
      list.push({ ...parseCover(text)!, text, until: Math.max(until, Date.now() + COVER_TTL_MS) });
      this.covers.set(table, list);
    }
  }
}

class AbortedChunk extends Error { override readonly name = 'AbortedChunk'; }

function keyOf(key: string[], row: Row): string {
  return JSON.stringify(key.map((k) => row[k] ?? null));
}

function isRetriable(err: unknown): boolean {
  const e = err as { retriable?: boolean; name?: string };
  return e?.name === 'AbortedChunk' || e?.retriable === true || e?.name === 'RetriableError';
}
