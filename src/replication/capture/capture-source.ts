import type { CapturedTransaction, SourcePosition } from '../change-event.ts';
import type { DbConnectionConfig, TableFilter } from '../connection-config.ts';
import type { Logger } from '../logger.ts';

export interface CaptureOptions {
  connection: DbConnectionConfig;
  /** Tributary job id; names the PostgreSQL slot and publication (`tributary_<id>`). */
  jobId: string;
  tables: TableFilter;
  /** Where to continue; undefined = the source's current position. */
  from?: SourcePosition;
  /**
   * `from` continues a capture that already ran (the feed holds its resume
   * position): what it needs on the source must still be there. PostgreSQL:
   * a missing slot is then a fatal error (it was dropped and changes since were
   * lost) instead of a new slot that silently starts later.
   */
  resuming?: boolean;
  /**
   * PostgreSQL: confirm a transaction to the slot only this long after its
   * feed append returned, so that a store that fsyncs once a second (Redis
   * AOF everysec) has it on disk first; a store that loses its last second
   * on a crash then gets it sent again. Default 0.
   */
  ackDelayMs?: number;
  /**
   * PostgreSQL: while nothing of the captured tables is in flight, confirm the
   * server's sent position (its keepalives) at most this often, so a slot
   * whose tables see no writes does not hold the WAL other databases write.
   * 0 = off. Default 10,000 ms (job option heartbeatIntervalSeconds).
   */
  heartbeatMs?: number;
  /** MariaDB replica server id; unique per reader. */
  serverId?: number;
  /** Column whose value becomes an event's scope. Default `_change_selector`. */
  selectorColumn?: string;
  /**
   * MariaDB: rows keep their binlog row images (mysql-row-images.ts): the feed writes them instead of the rows'
   * JSON, and a MariaDB destination applies them as row events. Default true.
   */
  rowImages?: boolean;
  logger: Logger;
}

export interface PreparedCapture {
  /** Position the stream starts from: the snapshot is consistent with it. */
  position: SourcePosition;
  /** PostgreSQL: snapshot exported by slot creation, importable while the capture stays prepared and idle. */
  snapshotName?: string;
}

/**
 * A log reader. `prepare()` makes sure the source side exists (slot and
 * publication on PostgreSQL) and fixes the start position; `run()` streams
 * committed transactions in commit order to `handler`, awaiting it before the
 * next one (backpressure), and acknowledges a position to the source only
 * after the handler for it resolved (durable downstream). It resolves when
 * `signal` aborts and rejects with a ReplicationError otherwise.
 */
export interface CaptureSource {
  prepare(): Promise<PreparedCapture>;
  run(handler: (tx: CapturedTransaction) => Promise<void>, signal: AbortSignal, opts?: CaptureRunOptions): Promise<void>;
  /** The source's current end of log, for lag and for migration catch-up. */
  currentPosition(): Promise<SourcePosition>;
  /** Remove what prepare() created (slot, publication). Idempotent. */
  drop(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface CaptureRunOptions {
  /**
   * Several whole transactions already received, handed over at once (in
   * order, none partial); their positions are acknowledged only after it
   * resolved, as with the handler. A capture without it calls the handler
   * per transaction; one that has it may still do so.
   */
  onBatch?: (txs: CapturedTransaction[]) => Promise<void>;
}
