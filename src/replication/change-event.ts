/**
 * The one change shape of Tributary. Capture modules (binlog, pgoutput)
 * decode their wire formats and map to these types; nothing downstream (feed,
 * apply, subscriptions, cached queries) sees a driver or wire type.
 *
 * Values are JSON-safe so that an event survives the Redis feed unchanged;
 * the column's `kind` says how to read a value:
 *
 * | kind        | value in `before`/`after`                                   |
 * |-------------|--------------------------------------------------------------|
 * | int         | number when |v| <= 2^53-1, otherwise a decimal string        |
 * | decimal     | decimal string, exactly as stored ("12.340")                 |
 * | float       | number (NaN/Infinity as the strings "NaN", "Infinity", ...) |
 * | text        | string                                                       |
 * | binary      | base64 string                                                |
 * | date        | "YYYY-MM-DD" ("0000-00-00" kept as is for MariaDB zero dates) |
 * | time        | "HH:MM:SS[.ffffff]" (may be negative / > 24h on MariaDB)     |
 * | datetime    | "YYYY-MM-DD HH:MM:SS[.ffffff]", no time zone                 |
 * | timestamptz | "YYYY-MM-DDTHH:MM:SS[.ffffff]Z", always UTC                   |
 * | json        | JSON text (string), so JSON null and SQL NULL stay distinct  |
 * | enum        | string label                                                 |
 * | set         | comma-separated labels, "" for the empty set                 |
 * | bit         | string of "0"/"1", most significant bit first                |
 * | bool        | boolean                                                      |
 * | uuid        | canonical lower-case string                                  |
 * | other       | string in the source's text representation                   |
 *
 * SQL NULL is `null` in every kind.
 */

/** Change operations; numeric codes follow Transicator (1 insert, 2 update, 3 delete). */
export enum Operation {
  Insert = 'insert',
  Update = 'update',
  Delete = 'delete',
  /** Schema change; `ddl` holds the statement (MariaDB) or a synthetic one (PostgreSQL). */
  Ddl = 'ddl',
}

export const OPERATION_CODE: Record<Operation, number> = {
  [Operation.Insert]: 1,
  [Operation.Update]: 2,
  [Operation.Delete]: 3,
  [Operation.Ddl]: 4,
};

export type SourceKind = 'mysql' | 'postgres';

export type ColumnKind =
  | 'int' | 'decimal' | 'float' | 'text' | 'binary' | 'date' | 'time' | 'datetime'
  | 'timestamptz' | 'json' | 'enum' | 'set' | 'bit' | 'bool' | 'uuid' | 'other';

export interface ColumnType {
  name: string;
  kind: ColumnKind;
  /** The source's own type text, e.g. "int(10) unsigned", "numeric(65,30)", "timestamp with time zone". */
  sourceType: string;
  nullable?: boolean;
  /** Integer width in bytes (1,2,3,4,8) for int; total bits for bit. */
  size?: number;
  unsigned?: boolean;
  /** Character length for char/varchar/binary/varbinary. */
  length?: number;
  /** true for fixed-length char/binary. */
  fixed?: boolean;
  precision?: number;
  scale?: number;
  /** Fractional second digits for time/datetime/timestamp. */
  fsp?: number;
  /** Labels for enum and set. */
  values?: string[];
  /** PostgreSQL type OID when the source is PostgreSQL. */
  pgOid?: number;
  /**
   * PostgreSQL source, kind 'other': the type a PostgreSQL destination creates
   * when it differs from sourceType, because the source's type is its own
   * (a domain over an array -> the array type; a composite type, or an array of
   * composites -> text; an array of an enum -> text[]). docs/types.md.
   */
  pgType?: string;
  /** Original family for text/binary sizing: tinytext, mediumtext, longtext, blob, ... */
  family?: string;
}

export type Value = string | number | boolean | null;
export type Row = Record<string, Value>;

/**
 * A source position, opaque to everything but its capture module, and
 * serialisable. A capture started from `resume` re-reads nothing it already
 * delivered as a committed transaction.
 */
export type SourcePosition =
  | { kind: 'mysql'; file: string; pos: number; gtid?: string }
  | { kind: 'postgres'; lsn: string };

export interface ChangeEvent {
  source: SourceKind;
  /** Feed sequence, Transicator format "<hi hex>.<lo hex>.<index hex>"; see sequence.ts. */
  sequence: string;
  /** Source transaction id (PostgreSQL xid; MariaDB GTID seq_no or a file:pos derived number). */
  txid: string;
  /** Commit order: the transaction's commit LSN (PostgreSQL) or binlog file/pos (MariaDB) as a 64-bit decimal string. */
  commitSequence: string;
  /** 0-based index of this change inside its transaction. */
  index: number;
  op: Operation;
  schema: string;
  table: string;
  /** Primary-key column names; empty when the table has none (then the full row is the key). */
  key: string[];
  before: Row | null;
  after: Row | null;
  columns: ColumnType[];
  /** Commit time, ms since the epoch. */
  commitTime: number;
  /** Scope taken from the configured selector column (default `_change_selector`). */
  scope?: string;
  /** DDL statement text for Operation.Ddl. */
  ddl?: string;
  /**
   * true when `before` holds only the key columns (PostgreSQL table without
   * REPLICA IDENTITY FULL): the other columns are absent, not null.
   */
  beforeKeyOnly?: boolean;
}

/** A committed transaction as captured: events in source order plus where to resume after it. */
export interface CapturedTransaction {
  txid: string;
  commitSequence: string;
  commitTime: number;
  /**
   * For lag only, not part of the feed payload: a commit time more precise
   * than `commitTime` on this process's clock (MariaDB, whose binlog has
   * one-second resolution; see commit-clock.ts). Absent: `commitTime` is precise.
   */
  commitEstimate?: number;
  /** Position at which a restarted capture continues after this transaction. */
  resume: SourcePosition;
  events: ChangeEvent[];
  /**
   * A piece of a large transaction that is not its end: more events follow
   * under the same txid (indexes go on where this piece stopped), and
   * `resume` is the position before the transaction, so it is never stored
   * or acknowledged. Captures hand a transaction over in pieces of at most
   * CAPTURE_PIECE_EVENTS events, so no process holds a whole large
   * transaction (docs/consistency.md, "Large transactions").
   */
  partial?: boolean;
  /**
   * Not part of the feed payload: the PostgreSQL capture's bytes of events' rows, by position in `events`
   * (pg-wire-rows.ts); the feed writes them instead of the rows' JSON where they are still of that event.
   */
  wire?: (WireRows | undefined)[];
}

/**
 * A change's row images as pgoutput TupleData bytes (pg-wire-rows.ts), each as buffer, start and end; a
 * null buffer: that image is not kept as bytes (absent, key-only, or not text and null columns only).
 * `ev`, `before` and `after` are the change and its row objects made from the same tuples: the feed writes
 * the bytes only for that change and those rows (anything that replaced them gets JSON).
 */
export interface WireRows {
  ev: ChangeEvent | null;
  before: Row | null; bb: Buffer | null; bs: number; be: number;
  after: Row | null; ab: Buffer | null; as: number; ae: number;
}

/** Events per piece a capture hands over before the transaction's commit (see CapturedTransaction.partial). */
export const CAPTURE_PIECE_EVENTS = 5_000;

/** `schema.table` */
export function qualifiedName(e: { schema: string; table: string }): string {
  return `${e.schema}.${e.table}`;
}
