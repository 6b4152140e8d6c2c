/**
 * One run of a MariaDB/MySQL binlog capture (mysql-binlog.capture.ts): the
 * zongji wiring, the transaction assembler and the pump that hands committed
 * transactions over, plus the zongji helpers they need. The data flow and
 * invariants are described in mysql-binlog.capture.ts.
 */
import ZongJi, { MariadbGtidPosition, type AnyBinlogEvent } from '@vlasky/zongji';
import type mysql from 'mysql2/promise';
import { CAPTURE_PIECE_EVENTS, type CapturedTransaction, type SourcePosition } from '../change-event.ts';
import { matchesFilter, SYSTEM_SCHEMAS, type TableFilter } from '../connection-config.ts';
import { classify, FatalError, LogLostError, type ReplicationError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { assertBinlogSettings } from './mysql-check.ts';
import { gtidAt } from './mysql-connection.ts';
import { isCommitMarker, isTransactionControl, parseDdl } from './mysql-ddl.ts';
import { exactLabels } from './mysql-schema.ts';
import { parseEnumLabels } from './mysql-values.ts';
import { enableFastRows, installFastRowDecoder, rowsDecodedHere, rowsImageOf } from './mysql-zongji-hooks.ts';
import { TransactionMapper, type RawTx } from './mysql-transaction.mapper.ts';
import { BinlogClock } from './binlog-clock.ts';
import { AppendCadence } from './append-cadence.ts';
import type { ServerInfo } from './mysql-connection.ts';

export interface CaptureStats {
  /** Transactions delivered to the handler. */
  transactions: number;
  events: number;
  /** Committed transactions waiting for the handler now. */
  queued: number;
  /** Times the binlog socket was paused because the queue was full. */
  pauses: number;
}

/** The settings a run takes from its capture. */
export interface RunSettings {
  opts: { maxQueuedTransactions: number; maxQueuedRows: number; progressIntervalMs: number; selectorColumn: string; serverId: number };
  log: Logger;
  tables: TableFilter;
  fastRows: boolean;
  /** Rows keep their binlog images (mysql-row-images.ts). */
  rowImages: boolean;
}

/** What a run needs of its capture (MysqlBinlogCapture). */
export interface BinlogRunHost {
  settings(): RunSettings;
  startContext(): Promise<{ db: mysql.Connection; info: ServerInfo; start: SourcePosition & { kind: 'mysql' } }>;
  /** A connection of its own (the binlog clock's), closed by its user. */
  openSide(): Promise<mysql.Connection>;
  newZongji(): ZongJi;
}

/** zongji's schema filter for a TableFilter: fewer table maps fetched, fewer rows decoded. */
function zongjiSchemaFilter(filter: TableFilter): { includeSchema?: Record<string, string[] | true>; excludeSchema?: Record<string, true> } {
  if (filter.schemas.length === 0) return { excludeSchema: Object.fromEntries([...SYSTEM_SCHEMAS].map((s) => [s, true as const])) };
  const include: Record<string, string[] | true> = {};
  for (const s of filter.schemas) {
    const prev = include[s.schema];
    if (!s.tables || s.tables.length === 0 || prev === true) include[s.schema] = true;
    else include[s.schema] = [...(prev ?? []), ...s.tables];
  }
  return { includeSchema: include };
}

interface OpenTx extends RawTx {
  sawBegin: boolean;
  /** Row events handed over in pieces so far (see cutPiece). */
  emitted: number;
  /** A query item is in the open transaction: it is not cut into pieces (its events are not one per row). */
  hasQuery: boolean;
}

/**
 * zongji's errors carry no codes. One of them needs an operator: without
 * binlog_row_metadata=FULL zongji names row columns from information_schema
 * as it is now, which fails when the binlog is replayed across a later ALTER
 * of the table; retrying cannot fix that, so it is fatal.
 */
function zongjiError(err: Error, start?: SourcePosition): ReplicationError {
  // ER_MASTER_FATAL_ERROR_READING_BINLOG: the file or GTID state to continue from is gone (PURGE BINARY LOGS,
  // expire_logs_days). Retrying reads the same missing position forever, so fail and say what was lost.
  const e = err as Error & { code?: string; errno?: number };
  if (e.errno === 1236 || e.code === 'ER_MASTER_FATAL_ERROR_READING_BINLOG' || /binlog files have been purged|could not find first log file/i.test(err.message)) {
    const at = start?.kind === 'mysql' ? `${start.file}:${start.pos}${start.gtid ? ` (GTID ${start.gtid})` : ''}` : 'the stored position';
    return new LogLostError(
      `binlog purged: the capture's resume position ${at} is no longer in the source's binary logs (${err.message}). `
      + 'Changes committed since then are lost to this job: re-snapshot by starting it from scratch (delete the job and create it again, '
      + 'or create it with onLogLoss: RESNAPSHOT to have it do so by itself), '
      + 'and keep binary logs longer (binlog_expire_logs_seconds / expire_logs_days) than a job may stay stopped', `binlog purged at ${at}`, { cause: err });
  }
  if (/schema changed between binlog event and metadata fetch/i.test(err.message)) {
    return new FatalError(
      `${err.message}. The binlog is being replayed across a later ALTER of this table: set binlog_row_metadata=FULL on the source `
      + '(MariaDB >= 10.5, MySQL >= 8.0.1) so row events carry their own column names, or start again from a new snapshot', { cause: err });
  }
  return classify(err);
}

/** The parts of zongji's information_schema path that exactZongjiLabels reaches into (not in its typings). */
interface ZongjiTableFetch {
  _fetchTableInfo(ev: { tableId: number; schemaName: string; tableName: string }, next: () => void): void;
  tableMap: Record<number, { columnSchemas?: { COLUMN_NAME: string; COLUMN_TYPE: string; ENUM_VALUES?: string[]; SET_VALUES?: string[] }[] }>;
}

/**
 * Without binlog_row_metadata=FULL, zongji decodes ENUM/SET values by label
 * lists it cuts out of information_schema's COLUMN_TYPE by splitting on
 * commas, keeping quotes doubled and backslashes escaped: a label with a
 * comma shifted every later label ('c' arrived as 'b'), and labels with
 * quotes, backslashes or (shown as '?' there) emoji came out wrong. This
 * hands zongji the labels as mysql-schema.ts reads them, which zongji uses
 * instead of its own parse (ENUM_VALUES / SET_VALUES, as FULL metadata
 * does). The binlog connection stays paused until the labels are set.
 */
function exactZongjiLabels(z: ZongJi, db: mysql.Connection, log: Logger): void {
  const zj = z as unknown as ZongjiTableFetch;
  if (typeof zj._fetchTableInfo !== 'function') {
    log.warn('zongji has no _fetchTableInfo: ENUM/SET labels with commas or quotes need binlog_row_metadata=FULL');
    return;
  }
  const fetch = zj._fetchTableInfo.bind(z);
  zj._fetchTableInfo = (ev, next) => fetch(ev, () => {
    const cols = (zj.tableMap[ev.tableId]?.columnSchemas ?? [])
      .map((c) => ({ c, kind: /^enum\(/i.test(c.COLUMN_TYPE) ? 'enum' as const : /^set\(/i.test(c.COLUMN_TYPE) ? 'set' as const : undefined }))
      .filter((x): x is { c: (typeof x)['c']; kind: 'enum' | 'set' } => x.kind !== undefined);
    if (cols.length === 0) { next(); return; }
    const typed = cols.map(({ c, kind }) => ({ name: c.COLUMN_NAME, kind, values: parseEnumLabels(c.COLUMN_TYPE) }));
    exactLabels(db, ev.schemaName, ev.tableName, typed).then((exact) => {
      cols.forEach(({ c, kind }, i) => {
        const labels = exact.get(c.COLUMN_NAME) ?? typed[i]!.values;
        if (kind === 'enum') c.ENUM_VALUES = labels; else c.SET_VALUES = labels;
      });
      next();
    }, (err: unknown) => z.emit('error', err instanceof Error ? err : new Error(String(err))));
  });
}

/** Bounds of a batch of whole transactions handed over at once (BinlogRun.pump). */
const BATCH_MAX_EVENTS = 1000;
const BATCH_MAX_TRANSACTIONS = 500;
/**
 * Longest a batch waits for more: the binlog carries every database's
 * transactions, and those this capture filters out keep the queue from ever
 * emptying on a busy server, so "flush when nothing more is queued" alone
 * could hold a batch for as long as the rest of the server keeps writing.
 */
const BATCH_MAX_WAIT_MS = 20;

/** One run() of a capture: zongji wiring, the transaction assembler and the pump. */
export class BinlogRun {
  private zongji?: ZongJi;
  private mapper?: TransactionMapper;
  private file = '';
  /** How often batches of small transactions go to the handler while they keep coming. */
  private readonly cadence = new AppendCadence();
  private lastEnd = 0;
  private headerLen = 19;
  private gtidPos?: MariadbGtidPosition;
  private current?: OpenTx;
  private readonly queue: RawTx[] = [];
  private queuedRows = 0;
  private paused = false;
  private pumping = false;
  private lastDelivered = Date.now();
  private delivered = 0;
  private deliveredEvents = 0;
  private pauses = 0;
  private failure?: ReplicationError;
  private finished = false;
  private settle!: { resolve: () => void; reject: (e: unknown) => void };
  private done?: Promise<void>;
  private readonly log: Logger;
  private readonly opts: RunSettings['opts'];
  private readonly tables: TableFilter;
  /** binlog_row_metadata=FULL on the server when the run started. */
  private rowMetadataFull = false;
  private isMariaDb = false;
  /**
   * Per `schema.table`, whether its last TABLE_MAP named the columns itself
   * (zongji then names row columns from the event, not from information_schema).
   */
  private readonly namedMaps = new Map<string, boolean>();
  private clock?: BinlogClock;

  constructor(
    private readonly capture: BinlogRunHost,
    private readonly handler: (tx: CapturedTransaction) => Promise<void>,
    private readonly signal: AbortSignal,
    private readonly onBatch?: (txs: CapturedTransaction[]) => Promise<void>,
  ) {
    const s = capture.settings();
    this.log = s.log;
    this.opts = s.opts;
    this.tables = s.tables;
  }

  start(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => { this.settle = { resolve, reject }; });
    this.done = done;
    if (this.signal.aborted) { this.finish(); return done; }
    this.signal.addEventListener('abort', this.onAbort, { once: true });
    this.boot().catch((err) => this.finish(classify(err)));
    return done;
  }

  private readonly onAbort = (): void => { this.finish(); };

  /** Ends the run as an abort would; resolves once it has settled. */
  async stop(): Promise<void> {
    this.finish();
    await this.done?.catch(() => undefined);
  }

  stats(): CaptureStats {
    return { transactions: this.delivered, events: this.deliveredEvents, queued: this.queue.length, pauses: this.pauses };
  }

  private async boot(): Promise<void> {
    const { db, info, start } = await this.capture.startContext();
    this.mapper = new TransactionMapper(db, { selectorColumn: this.opts.selectorColumn, tables: this.tables, logger: this.log });
    this.rowMetadataFull = (await assertBinlogSettings(db)) === 'FULL';
    this.isMariaDb = info.isMariaDb;
    this.file = start.file;
    this.lastEnd = start.pos;
    // MariaDB: seed our own GTID position so every delivered transaction can
    // carry the exact state after it; BINLOG_GTID_POS gives it for file/pos.
    const useGtid = info.isMariaDb && start.gtid !== undefined && start.gtid !== '';
    if (info.isMariaDb) {
      const seed = start.gtid ?? (await gtidAt(db, info, start.file, start.pos).catch(() => undefined));
      if (seed !== undefined) this.gtidPos = MariadbGtidPosition.parse(seed);
    }
    const fastRows = this.capture.settings().fastRows && (await installFastRowDecoder());
    if (this.capture.settings().fastRows && !fastRows) this.log.info('fast row decoder not available for this zongji version: zongji decodes the rows');
    if (this.finished) return;
    const z = this.capture.newZongji();
    this.zongji = z;
    if (fastRows) enableFastRows(z, true, this.capture.settings().rowImages);
    // For lag only: when the binlog reached each commit, whatever this capture's delay (binlog-clock.ts).
    this.clock = new BinlogClock(() => this.capture.openSide(), this.log);
    this.clock.start();
    exactZongjiLabels(z, db, this.log);
    z.on('error', (err: Error) => this.finish(zongjiError(err, start)));
    z.on('binlog', (e: AnyBinlogEvent) => {
      try {
        this.onEvent(e);
      } catch (err) {
        this.finish(classify(err));
      }
    });
    z.on('ready', () => { this.headerLen = 19 + (z.useChecksum ? 4 : 0); });
    const base = { serverId: this.opts.serverId, ...zongjiSchemaFilter(this.tables) };
    this.log.info({ file: start.file, pos: start.pos, gtid: start.gtid, byGtid: useGtid }, 'binlog capture starting');
    // On MariaDB a GTID start travels in @slave_connect_state: the server
    // finds the file itself and skips what the position already covers.
    z.start(useGtid ? { ...base, gtidSet: start.gtid } : { ...base, filename: start.file, position: start.pos });
  }

  // ---- assembler (synchronous, binlog order) -------------------------------

  private offsetOf(e: AnyBinlogEvent): number {
    return e.nextPosition > 0 ? e.nextPosition - e.size - this.headerLen : this.lastEnd;
  }

  private open(e: AnyBinlogEvent, gtid: RawTx['gtid'], sawBegin: boolean): OpenTx {
    if (this.current && (this.current.items.length > 0 || this.current.emitted > 0)) {
      // A new group means the previous one ended without a marker we saw.
      this.log.warn({ file: this.file, pos: this.current.start }, 'transaction without commit marker; delivering it');
      this.commit(e, this.offsetOf(e));
    }
    this.current = { file: this.file, start: this.offsetOf(e), gtid, sawBegin, items: [], commitPos: 0, commitTime: 0, rows: 0, emitted: 0, hasQuery: false };
    return this.current;
  }

  private onEvent(e: AnyBinlogEvent): void {
    if (this.finished) return;
    if (this.paused) this.zongji?.connection?.pause();
    switch (e.getTypeName()) {
      case 'Rotate': {
        const r = e as Extract<AnyBinlogEvent, { getTypeName(): 'Rotate' }>;
        this.file = r.binlogName;
        this.lastEnd = r.position;
        return;
      }
      case 'MariadbGtid': {
        const g = e as Extract<AnyBinlogEvent, { getTypeName(): 'MariadbGtid' }>;
        this.open(e, { text: g.gtid, seqNo: String(g.seqNo), domainId: g.domainId, serverId: g.serverId }, !g.standalone);
        break;
      }
      case 'Gtid': case 'AnonymousGtid': {
        const g = e as Extract<AnyBinlogEvent, { getTypeName(): 'Gtid' }>;
        this.open(e, e.getTypeName() === 'Gtid' ? { text: g.gtid, seqNo: String(g.gno) } : undefined, false);
        break;
      }
      case 'Query': {
        const q = e as Extract<AnyBinlogEvent, { getTypeName(): 'Query' }>;
        if (isCommitMarker(q.query)) { if (this.current) this.commit(e); break; }
        if (isTransactionControl(q.query)) {
          if (/^\s*BEGIN/i.test(q.query)) {
            if (this.current) this.current.sawBegin = true;
            else this.open(e, undefined, true);
          }
          break;
        }
        const tx = this.current ?? this.open(e, undefined, false);
        tx.items.push({ kind: 'query', sql: q.query, schema: q.schema, namedRows: this.namedRows(q.query, q.schema) });
        tx.hasQuery = true;
        // Outside BEGIN..COMMIT a statement (DDL) is its own group.
        if (!tx.sawBegin) this.commit(e);
        break;
      }
      case 'WriteRows': case 'UpdateRows': case 'DeleteRows': {
        const r = e as Extract<AnyBinlogEvent, { getTypeName(): 'WriteRows' }>;
        const map = r.tableMap[r.tableId];
        if (!map || SYSTEM_SCHEMAS.has(map.parentSchema.toLowerCase()) || !matchesFilter(this.tables, map.parentSchema, map.tableName)) break;
        const tx = this.current ?? this.open(e, undefined, true);
        tx.items.push({ kind: r.getTypeName() as 'WriteRows', schema: map.parentSchema, table: map.tableName, rows: r.rows as unknown[], uniformKeys: rowsDecodedHere(r), images: rowsImageOf(r) });
        tx.rows += r.rows.length;
        if (tx.rows >= CAPTURE_PIECE_EVENTS && !tx.hasQuery) this.cutPiece(tx, e);
        break;
      }
      case 'TableMap': {
        const t = e as unknown as { schemaName: string; tableName: string; hasSelfDescribingMetadata?(): boolean; hasAmbiguousTemporalColumns?(): boolean };
        // zongji's own rule (index.js): MariaDB tables with classic temporal codes take the information_schema path.
        const named = t.hasSelfDescribingMetadata?.() === true && !(this.isMariaDb && t.hasAmbiguousTemporalColumns?.() === true);
        this.namedMaps.set(`${t.schemaName}.${t.tableName}`, named);
        break;
      }
      case 'Xid': case 'XaPrepare':
        if (this.current) this.commit(e);
        break;
      default:
        break;
    }
    if (e.nextPosition > 0) this.lastEnd = e.nextPosition;
  }

  /** Whether the rows of the table `sql` alters carry their own column names (see RawItem `namedRows`). */
  private namedRows(sql: string, schema: string): boolean {
    if (!this.rowMetadataFull) return false;
    const ref = parseDdl(sql, schema)?.tables[0];
    return ref === undefined || this.namedMaps.get(`${ref.schema}.${ref.table}`) !== false;
  }

  /** Close the open transaction at commit event `e`; `endPos` overrides where it ends. */
  private commit(e: AnyBinlogEvent, endPos?: number): void {
    const tx = this.current;
    if (!tx) return;
    this.current = undefined;
    tx.commitPos = endPos ?? (e.nextPosition > 0 ? e.nextPosition : this.lastEnd);
    tx.commitTime = e.timestamp;
    tx.observedAt = Date.now();
    if (this.clock) tx.bracket = this.clock.bracket(this.file, tx.commitPos);
    if (tx.gtid?.domainId !== undefined && this.gtidPos) {
      this.gtidPos.add({ domainId: tx.gtid.domainId, serverId: tx.gtid.serverId!, seqNo: tx.gtid.seqNo });
      tx.gtidAfter = this.gtidPos.toString();
    } else if (tx.gtid && tx.gtid.domainId === undefined && this.zongji?.gtidSet) {
      tx.gtidAfter = this.zongji.gtidSet;
    }
    if (tx.emitted > 0) tx.indexBase = tx.emitted;
    this.enqueue(tx);
  }

  /**
   * Hands the rows of the open transaction read so far to the pump as a piece
   * (CapturedTransaction.partial), so a large transaction is never held whole.
   * Its commit time is the row event's: the commit's is not known yet.
   */
  private cutPiece(tx: OpenTx, e: AnyBinlogEvent): void {
    const piece: RawTx = {
      file: tx.file, start: tx.start, gtid: tx.gtid, items: tx.items, commitPos: 0, commitTime: e.timestamp, observedAt: Date.now(),
      rows: tx.rows, partial: true, indexBase: tx.emitted,
    };
    tx.emitted += tx.rows;
    tx.items = [];
    tx.rows = 0;
    this.enqueue(piece);
  }

  private enqueue(tx: RawTx): void {
    this.queue.push(tx);
    this.queuedRows += tx.rows;
    if (this.queue.length >= this.opts.maxQueuedTransactions || this.queuedRows >= this.opts.maxQueuedRows) {
      if (!this.paused) this.pauses++;
      this.paused = true;
      this.zongji?.connection?.pause();
    }
    void this.pump();
  }

  // ---- pump (async, one transaction at a time) -----------------------------

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    // Whole transactions mapped back to back go to the handler together (onBatch) while more are queued,
    // so small transactions cost one feed round trip per batch instead of one each.
    let batch: CapturedTransaction[] = [];
    let batchEvents = 0;
    let batchSince = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const txs = batch;
      batch = []; batchEvents = 0;
      this.cadence.handedOver();
      if (txs.length === 1) await this.handler(txs[0]!);
      else await this.onBatch!(txs);
      this.lastDelivered = Date.now();
      this.delivered += txs.length;
      for (const t of txs) this.deliveredEvents += t.events.length;
    };
    try {
      while (!this.finished && this.queue.length > 0) {
        const raw = this.queue.shift()!;
        this.queuedRows -= raw.rows;
        const tx = await this.mapper!.map(raw);
        if (this.finished) break;
        const quietFor = Date.now() - this.lastDelivered;
        const whole = !tx.partial && raw.indexBase === undefined && tx.events.length > 0;
        if (this.onBatch && whole) {
          if (batch.length === 0) batchSince = Date.now();
          batch.push(tx);
          batchEvents += tx.events.length;
          if (batchEvents >= BATCH_MAX_EVENTS || batch.length >= BATCH_MAX_TRANSACTIONS) await flush();
        } else if (tx.events.length > 0 || tx.partial || raw.indexBase !== undefined || (this.opts.progressIntervalMs > 0 && quietFor >= this.opts.progressIntervalMs)) {
          // The end of a transaction handed over in pieces is delivered even when empty: it records the resume position.
          await flush();
          if (this.finished) break;
          await this.handler(tx);
          this.lastDelivered = Date.now();
          this.delivered++;
          this.deliveredEvents += tx.events.length;
        }
        // Filtered-out transactions in between: the batch still goes within BATCH_MAX_WAIT_MS.
        if (batch.length > 0 && Date.now() - batchSince >= BATCH_MAX_WAIT_MS) await flush();
        // Nothing more queued: the batch goes now, or, when the previous one went less than the cadence ago,
        // once the cadence is up, with what arrived meanwhile (append-cadence.ts).
        if (batch.length > 0 && this.queue.length === 0) {
          if (await this.cadence.linger()) {
            if (this.finished) break;
            if (this.queue.length > 0) continue;
          }
          await flush();
        }
        if (this.paused && this.queue.length <= this.opts.maxQueuedTransactions / 2 && this.queuedRows <= this.opts.maxQueuedRows / 2) {
          this.paused = false;
          this.zongji?.connection?.resume();
        }
      }
      if (!this.finished) await flush();
    } catch (err) {
      this.finish(classify(err));
    } finally {
      this.pumping = false;
    }
    if (this.finished) { this.maybeSettle(); return; }
    // Transactions queued while the last await ran found `pumping` set and returned: this run takes
    // them (with the socket paused at a full queue, nothing else would ever call pump again).
    if (this.queue.length > 0) void this.pump();
  }

  private finish(err?: ReplicationError): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = err;
    this.signal.removeEventListener('abort', this.onAbort);
    this.clock?.stop();
    if (err) this.log.warn({ err: err.message, retriable: err.retriable }, 'binlog capture failed');
    const z = this.zongji;
    if (z) {
      z.removeAllListeners('binlog');
      z.on('error', () => undefined);
      try { z.stop(); } catch { /* already stopped */ }
    }
    this.maybeSettle();
  }

  /** Settle only once the handler in flight (if any) has returned: the caller may close right after. */
  private maybeSettle(): void {
    if (!this.finished || this.pumping) return;
    if (this.failure) this.settle.reject(this.failure);
    else this.settle.resolve();
  }
}
