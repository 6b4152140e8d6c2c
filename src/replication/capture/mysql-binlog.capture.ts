/**
 * MariaDB/MySQL row-binlog capture on top of @vlasky/zongji.
 *
 * zongji decodes events; this class groups them into committed transactions
 * and maps them to ChangeEvents. Data flow:
 *
 *   binlog socket --zongji (sync)--> assembler --committed RawTx--> queue --pump (async)--> handler
 *
 * The assembler runs synchronously inside zongji's 'binlog' callback, so it
 * sees events strictly in binlog order and fixes each transaction's file,
 * start offset (sequence) and GTID state there. The pump converts values
 * (metadata lookups are async) and awaits the handler one transaction at a
 * time. When the queue is full the binlog connection is paused (mysql2 holds
 * further packets), which is the backpressure towards the server.
 *
 * Invariants: a transaction reaches the handler only after its commit event
 * was read; `resume` is the position right after that commit event, so a
 * capture restarted from it re-reads nothing already delivered.
 */
import ZongJi from '@vlasky/zongji';
import type mysql from 'mysql2/promise';
import { randomInt } from 'node:crypto';
import type { CapturedTransaction, SourcePosition } from '../change-event.ts';
import { classify, FatalError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { CaptureOptions, CaptureRunOptions, CaptureSource, PreparedCapture } from './capture-source.ts';
import { assertBinlogSettings } from './mysql-check.ts';
import { binlogEnd, gtidAt, mysqlConnectionOptions, openMysql, serverInfo, type ServerInfo } from './mysql-connection.ts';
import { BinlogRun, type BinlogRunHost, type CaptureStats, type RunSettings } from './mysql-binlog-run.ts';

export interface MysqlCaptureOptions extends CaptureOptions {
  /** Committed transactions buffered ahead of the handler before the binlog socket is paused. Default 32. */
  maxQueuedTransactions?: number;
  /** Row changes buffered ahead of the handler before the binlog socket is paused. Default 20000. */
  maxQueuedRows?: number;
  /**
   * When only filtered-out traffic passed for this long, deliver one empty
   * transaction (`events: []`) so the caller can move its checkpoint forward
   * instead of re-reading that traffic after a restart. Default 0 (off):
   * every delivered transaction has at least one event.
   */
  progressIntervalMs?: number;
  /**
   * Decode row events with mysql-rows-decoder.ts (same row objects as
   * zongji's own decoder, faster; tables with a column type it does not
   * handle stay with zongji). Default true; false leaves all rows to zongji.
   */
  fastRowDecoder?: boolean;
}

export type { CaptureStats } from './mysql-binlog-run.ts';

const DEFAULTS = { maxQueuedTransactions: 32, maxQueuedRows: 20_000, progressIntervalMs: 0, selectorColumn: '_change_selector' };

/** Replica server ids are 32-bit; stay clear of the small ids real servers use. */
function randomServerId(): number {
  return randomInt(10_000, 4_000_000_000);
}

export class MysqlBinlogCapture implements CaptureSource, BinlogRunHost {
  private readonly opts: Required<Pick<MysqlCaptureOptions, 'maxQueuedTransactions' | 'maxQueuedRows' | 'progressIntervalMs' | 'selectorColumn' | 'serverId'>>;
  private readonly log: Logger;
  private prepared?: SourcePosition;
  private db?: mysql.Connection;
  private info?: ServerInfo;
  private zongji?: ZongJi;
  private closing?: Promise<void>;
  private active?: BinlogRun;
  private lastStats: CaptureStats = { transactions: 0, events: 0, queued: 0, pauses: 0 };

  constructor(private readonly options: MysqlCaptureOptions) {
    if (options.connection.kind !== 'mysql') throw new FatalError(`MysqlBinlogCapture needs a mysql connection, got "${options.connection.kind}"`);
    const serverId = options.serverId ?? randomServerId();
    if (!Number.isInteger(serverId) || serverId < 1 || serverId > 0xffffffff) throw new FatalError(`invalid serverId ${serverId}`);
    this.opts = {
      maxQueuedTransactions: Math.max(1, options.maxQueuedTransactions ?? DEFAULTS.maxQueuedTransactions),
      maxQueuedRows: Math.max(1, options.maxQueuedRows ?? DEFAULTS.maxQueuedRows),
      progressIntervalMs: options.progressIntervalMs ?? DEFAULTS.progressIntervalMs,
      selectorColumn: options.selectorColumn ?? DEFAULTS.selectorColumn,
      serverId,
    };
    this.log = options.logger.child({ component: 'mysql-binlog-capture', jobId: options.jobId, serverId });
  }

  get serverId(): number { return this.opts.serverId; }

  private async conn(): Promise<mysql.Connection> {
    if (this.closing) throw new FatalError('capture is closed');
    if (!this.db) {
      this.db = await openMysql(this.options.connection);
      this.info = await serverInfo(this.db);
    }
    return this.db;
  }

  /** Checks log_bin / binlog_format=ROW / binlog_row_image=FULL and fixes the start position. */
  async prepare(): Promise<PreparedCapture> {
    const db = await this.conn();
    const rowMetadata = await assertBinlogSettings(db);
    if (rowMetadata !== 'FULL') {
      this.log.warn({ binlog_row_metadata: rowMetadata || 'unsupported' }, 'binlog_row_metadata is not FULL: replaying the binlog across an ALTER TABLE will stop the capture, and a column rename (RENAME COLUMN, CHANGE to another name) fails the job');
    }
    this.prepared = this.options.from ?? (await this.currentPosition());
    return { position: this.prepared };
  }

  async currentPosition(): Promise<SourcePosition> {
    const db = await this.conn();
    try {
      const end = await binlogEnd(db);
      if (!end) throw new FatalError('binary logging is off on the source (log_bin=OFF): capture needs log_bin=ON');
      const gtid = await gtidAt(db, this.info!, end.file, end.pos);
      return { kind: 'mysql', file: end.file, pos: end.pos, ...(gtid !== undefined ? { gtid } : {}) };
    } catch (err) {
      throw classify(err);
    }
  }

  /** Nothing is created on the source for a binlog reader. */
  async drop(): Promise<void> {}

  run(handler: (tx: CapturedTransaction) => Promise<void>, signal: AbortSignal, runOpts: CaptureRunOptions = {}): Promise<void> {
    if (this.closing) return Promise.reject(new FatalError('capture is closed'));
    if (this.active) return Promise.reject(new FatalError('capture is already running'));
    const run = new BinlogRun(this, handler, signal, runOpts.onBatch);
    this.active = run;
    return run.start()
      .catch((err: unknown) => {
        // The metadata connection may be the broken part: the next run() reconnects.
        this.db?.destroy();
        this.db = undefined;
        throw err;
      })
      .finally(() => {
        this.lastStats = run.stats();
        if (this.active === run) this.active = undefined;
      });
  }

  /** Counters of the current (or last) run, for metrics and tests. */
  stats(): CaptureStats {
    return this.active?.stats() ?? this.lastStats;
  }

  /** @internal used by BinlogRun */
  async startContext(): Promise<{ db: mysql.Connection; info: ServerInfo; start: SourcePosition & { kind: 'mysql' } }> {
    const db = await this.conn();
    const from = this.options.from ?? this.prepared ?? (await this.currentPosition());
    if (from.kind !== 'mysql') throw new FatalError(`cannot resume a MariaDB capture from a ${from.kind} position`);
    return { db, info: this.info!, start: from };
  }

  /** @internal A connection of its own (the binlog clock's), closed by its user. */
  openSide(): Promise<mysql.Connection> {
    return openMysql(this.options.connection);
  }

  /** @internal */
  newZongji(): ZongJi {
    const z = new ZongJi(mysqlConnectionOptions(this.options.connection));
    this.zongji = z;
    return z;
  }

  /** @internal */
  settings(): RunSettings {
    return { opts: this.opts, log: this.log, tables: this.options.tables, fastRows: this.options.fastRowDecoder ?? true, rowImages: this.options.rowImages ?? true };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // A run still going ends as if aborted (after its in-flight handler).
      if (this.active) await this.active.stop();
      try { this.zongji?.stop(); } catch (err) { this.log.warn({ err }, 'zongji stop failed'); }
      try { await this.db?.end(); } catch { this.db?.destroy(); }
      this.db = undefined;
    })();
    return this.closing;
  }
}
