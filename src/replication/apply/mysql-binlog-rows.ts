/**
 * MariaDB -> MariaDB upserts as row events: the source's own row images
 * (mysql-row-images.ts) sent back to the destination in a `BINLOG` statement,
 * the statement mysqlbinlog writes for row events, which the server applies
 * with the code a replica's SQL thread uses (issue 12). No value is turned
 * into SQL text and parsed back: the destination stores the very bytes the
 * source stored.
 *
 * Used for the rows of an upsert step whose after image is still the one the
 * capture read (rowImageOf), when the destination table is the source table's
 * twin: the same column names in the same order, each of the same type
 * (COLUMN_TYPE, integer display widths aside) and character set, the step's
 * key as its PRIMARY KEY, no generated column and no trigger (row events do
 * not fire triggers). The table is read from information_schema once per
 * 30 s and again after DDL. A change the source wrote as an insert goes as a
 * Write_rows event, an update as Update_rows with its before image (the
 * destination finds the row by its primary key): with the destination in the
 * state the source had, the effect is the upsert's. Anything else (a row the
 * destination lacks or already has, a type the server refuses) makes the
 * server fail the statement; the applier then rolls the batch back and
 * applies it as SQL (mysql.applier.ts applyAtOnce), and the table takes the
 * SQL way for a minute. A destination user without the BINLOG REPLAY (or
 * SUPER) privilege: the SQL way from then on.
 *
 * Layouts: MariaDB's binlog format v4 (sql/log_event.h): a common header of
 * 19 bytes, CRC32 checksums, the format description event first.
 */
import { crc32 } from 'node:zlib';
import type { ColumnType, Row } from '../change-event.ts';
import { rowImageOf, type RowImage, type TableMapImage } from '../mysql-row-images.ts';
import type { TableRef } from './batch-plan.ts';

const FORMAT_DESCRIPTION_EVENT = 15;
const TABLE_MAP_EVENT = 19;
const WRITE_ROWS_EVENT_V1 = 23;
const UPDATE_ROWS_EVENT_V1 = 24;
const STMT_END_F = 1;
const HEADER = 19;
const CHECKSUM = 4;
const BINLOG_CHECKSUM_ALG_CRC32 = 1;
/** Row bytes per rows event (the source's own events are about 8 KiB). */
const EVENT_ROW_BYTES = 64 * 1024;
/** How long a destination table's shape is trusted, and how long a table whose row events failed takes the SQL way. */
const SHAPE_TTL_MS = 30_000;
const FAILED_TTL_MS = 60_000;

/**
 * Post-header lengths per event type (1..171) of a MariaDB 10.x format description event, as the server writes
 * them: the layout the server reads the events after it with.
 */
const POST_HEADER_LENGTHS = Buffer.from([
  56, 13, 0, 8, 0, 18, 0, 4, 4, 4, 4, 18, 0, 0, 228, 0, 4, 26, 8, 0, 0, 0, 8, 8, 8, 2, 0, 0, 0, 10, 10, 10, 0, 0, 0, 0, 0, 0, 10, 10, 10,
  ...new Array<number>(119).fill(0),
  4, 19, 4, 0, 13, 8, 8, 8, 10, 10, 10,
]);

/** The destination table, as far as row events are concerned. */
interface DestShape {
  at: number;
  /** Why row events cannot go there; undefined when they can. */
  no?: string;
  names: string[];
  types: string[];
  charsets: (string | null)[];
  primaryKey: string[];
  /** Table maps already compared with it. */
  maps: WeakMap<TableMapImage, boolean>;
}

export interface BinlogRowsStats {
  /** Rows sent as row events and committed, and the BINLOG statements that carried them. */
  rows: number;
  statements: number;
  /** Batches with row events the server failed (applied as SQL instead), and the last error. */
  failed: number;
  lastError?: string;
}

/** This process's appliers together (tests, benches). */
export const binlogRowStats: BinlogRowsStats = { rows: 0, statements: 0, failed: 0 };

type Select = (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

export class BinlogRows {
  readonly stats: BinlogRowsStats = { rows: 0, statements: 0, failed: 0 };
  private readonly shapes = new Map<string, DestShape>();
  private readonly failedAt = new Map<string, number>();
  private off: string | undefined;
  private fde: string | undefined;
  private serverId = 0;
  private tableId = 0;

  /** `mariadb`: the destination is MariaDB (MySQL's row events differ). */
  constructor(mariadb: boolean) {
    if (!mariadb) this.off = 'the destination is not MariaDB';
  }

  /** Why row events are not used at all, if they are not. */
  get disabled(): string | undefined {
    return this.off;
  }

  /** The destination's identity, read once: its version for the format description, its server id for the events. */
  async setUp(select: Select): Promise<void> {
    if (this.off) return;
    const [row] = await select('SELECT VERSION() AS v, @@server_id AS id', []);
    this.serverId = Number(row?.id ?? 0) >>> 0;
    this.fde = binlogStatement([formatDescription(String(row?.v ?? '10.11.0-MariaDB'), this.serverId)]);
  }

  /** Forget what is known of the destination's tables (after DDL). */
  forgetShapes(): void {
    this.shapes.clear();
  }

  /** Reads the shapes of the destination tables of these upserts that may take row events and are not known (or stale). */
  async prepare(select: Select, steps: { dest: TableRef; rows: Row[] }[]): Promise<void> {
    if (this.off || this.fde === undefined) return;
    const now = Date.now();
    for (const { dest, rows } of steps) {
      const k = destKey(dest);
      const known = this.shapes.get(k);
      if (known && now - known.at < SHAPE_TTL_MS) continue;
      if (rows.length === 0 || rowImageOf(rows[0]!) === undefined) continue;
      this.shapes.set(k, await readShape(select, dest));
    }
  }

  /** The format description statement a query with row events starts with. */
  get formatDescription(): string {
    return this.fde ?? '';
  }

  /**
   * Splits an upsert step's rows: those that go as row events (one BINLOG statement, or none), and the rest (SQL).
   * `columns` and `key` are the step's.
   */
  split(dest: TableRef, columns: ColumnType[], key: string[], rows: Row[]): { statement?: string; rest: Row[]; sent?: number } {
    if (this.off || this.fde === undefined || rows.length === 0) return { rest: rows };
    const k = destKey(dest);
    const failed = this.failedAt.get(k);
    if (failed !== undefined && Date.now() - failed < FAILED_TTL_MS) return { rest: rows };
    const shape = this.shapes.get(k);
    if (!shape || shape.no !== undefined) return { rest: rows };
    const inserts: RowImage[] = [];
    const updates: RowImage[] = [];
    const rest: Row[] = [];
    let map: TableMapImage | undefined;
    for (const row of rows) {
      const img = rowImageOf(row);
      if (img === undefined || img.deleted) { rest.push(row); continue; }
      const m = img.block.map;
      if (m !== map) {
        // One table map per statement: rows of another (an ALTER TABLE between them) take the SQL way.
        if (map !== undefined || !fits(shape, m, columns, key)) { rest.push(row); continue; }
        map = m;
      }
      if (img.mid === img.start) inserts.push(img);
      // An update that moved its row to another key: the plan deletes the old key first, where Update_rows would look.
      else if (img.before === null || !sameKey(img.before, row, key)) rest.push(row);
      else updates.push(img);
    }
    if (map === undefined || inserts.length + updates.length === 0) return { rest: rows };
    const events = [tableMap(map, dest, ++this.tableId, this.serverId)];
    rowsEvents(events, inserts, WRITE_ROWS_EVENT_V1, map.names.length, this.tableId, this.serverId, updates.length === 0);
    rowsEvents(events, updates, UPDATE_ROWS_EVENT_V1, map.names.length, this.tableId, this.serverId, true);
    if (this.tableId >= 0xffffff) this.tableId = 0;
    return { statement: binlogStatement(events), rest, sent: inserts.length + updates.length };
  }

  /** A batch with these rows and statements of row events committed. */
  committed(rows: number, statements: number): void {
    this.stats.rows += rows; this.stats.statements += statements;
    binlogRowStats.rows += rows; binlogRowStats.statements += statements;
  }

  /**
   * A batch with row events failed. Not theirs to answer for: the checkpoint guard (1048), a deadlock or a lock
   * wait (undefined is returned). A user who may not replay row events, or a server that will not log them
   * (binlog_format=STATEMENT): row events are off from then on. Anything else (a row the destination lacks or
   * already has, a type it will not convert): the batch's tables take the SQL way for a minute.
   */
  failed(err: unknown, tables: TableRef[]): string | undefined {
    const errno = (err as { errno?: number }).errno;
    if (errno === 1048 || errno === 1213 || errno === 1205) return undefined;
    this.stats.failed++;
    binlogRowStats.failed++;
    binlogRowStats.lastError = `${errno ?? '?'} ${(err as Error).message}`.slice(0, 300);
    // 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR, 1044/1142 access denied, 1370 no such privilege, 1664/1666 row injection
    // impossible with this binlog format, 1609 no format description (should not happen: one starts every query).
    if (errno === 1227 || errno === 1044 || errno === 1142 || errno === 1370 || errno === 1664 || errno === 1666 || errno === 1609) {
      this.off = `row events are off: ${(err as Error).message}`;
      return this.off;
    }
    const now = Date.now();
    for (const t of tables) this.failedAt.set(destKey(t), now);
    return `row events failed (${(err as Error).message}); these tables take the SQL way for a minute`;
  }
}

function sameKey(a: Row, b: Row, key: string[]): boolean {
  for (const k of key) {
    const x = a[k];
    const y = b[k];
    if (x !== y && !(x !== null && y !== null && typeof x === 'object' && typeof y === 'object' && JSON.stringify(x) === JSON.stringify(y))) return false;
  }
  return true;
}

function destKey(ref: TableRef): string {
  return `${ref.schema.length}:${ref.schema}.${ref.table}`;
}

async function readShape(select: Select, dest: TableRef): Promise<DestShape> {
  const cols = await select(
    `SELECT COLUMN_NAME AS n, COLUMN_TYPE AS t, CHARACTER_SET_NAME AS cs, EXTRA AS x, COLUMN_KEY AS k FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, [dest.schema, dest.table]);
  const shape: DestShape = {
    at: Date.now(), names: cols.map((c) => String(c.n)), types: cols.map((c) => normalType(String(c.t))),
    charsets: cols.map((c) => (c.cs === null || c.cs === undefined ? null : normalCharset(String(c.cs)))), primaryKey: [], maps: new WeakMap(),
  };
  if (cols.length === 0) { shape.no = 'no such table'; return shape; }
  if (cols.some((c) => /GENERATED|VIRTUAL|STORED|PERSISTENT/i.test(String(c.x ?? '')))) shape.no = 'a generated column';
  const pk = await select(
    `SELECT COLUMN_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
    [dest.schema, dest.table]);
  shape.primaryKey = pk.map((r) => String(r.n));
  if (shape.primaryKey.length === 0) shape.no ??= 'no primary key';
  const trg = await select('SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [dest.schema, dest.table]);
  if (Number(trg[0]?.n ?? 0) > 0) shape.no ??= 'triggers';
  if (Buffer.byteLength(dest.schema) > 255 || Buffer.byteLength(dest.table) > 255) shape.no ??= 'a name too long';
  return shape;
}

/** Integer display widths aside, as information_schema writes COLUMN_TYPE. */
export function normalType(t: string): string {
  // The type's name without case; ENUM and SET labels keep theirs.
  const s = t.trim().replace(/^[A-Za-z]+/, (name) => name.toLowerCase());
  return s.replace(/^(tinyint|smallint|mediumint|int|bigint|year)\(\d+\)/, '$1');
}

function normalCharset(cs: string): string {
  const c = cs.toLowerCase();
  return c === 'utf8' ? 'utf8mb3' : c;
}

/** Whether rows of table map `m`, with the step's columns and key, go into the destination table `shape` as they are. */
function fits(shape: DestShape, m: TableMapImage, columns: ColumnType[], key: string[]): boolean {
  const known = shape.maps.get(m);
  if (known !== undefined) return known;
  const n = m.names.length;
  let ok = shape.names.length === n && columns.length === n && key.length === shape.primaryKey.length && key.every((k) => shape.primaryKey.includes(k));
  for (let i = 0; ok && i < n; i++) {
    ok = m.names[i] === shape.names[i] && columns[i]!.name === m.names[i]
      && normalType(columns[i]!.sourceType) === shape.types[i]
      && (m.charsets[i] === null ? null : normalCharset(m.charsets[i]!)) === shape.charsets[i];
  }
  shape.maps.set(m, ok);
  return ok;
}

/** `BINLOG '<base64>'` of these events, one after the other. */
function binlogStatement(events: Buffer[]): string {
  return `BINLOG '${(events.length === 1 ? events[0]! : Buffer.concat(events)).toString('base64')}'`;
}

function header(buf: Buffer, type: number, serverId: number, flags = 0): void {
  buf.writeUInt32LE(Math.floor(Date.now() / 1000), 0);
  buf[4] = type;
  buf.writeUInt32LE(serverId, 5);
  buf.writeUInt32LE(buf.length, 9);
  buf.writeUInt32LE(0, 13);
  buf.writeUInt16LE(flags, 17);
}

function seal(buf: Buffer): Buffer {
  buf.writeUInt32LE(crc32(buf.subarray(0, buf.length - CHECKSUM)) >>> 0, buf.length - CHECKSUM);
  return buf;
}

/** A format description event: binlog version 4, `version` as the server version, CRC32 checksums. */
export function formatDescription(version: string, serverId: number): Buffer {
  const buf = Buffer.alloc(HEADER + 2 + 50 + 4 + 1 + POST_HEADER_LENGTHS.length + 1 + CHECKSUM);
  header(buf, FORMAT_DESCRIPTION_EVENT, serverId);
  let p = HEADER;
  buf.writeUInt16LE(4, p); p += 2;
  buf.write(version.slice(0, 49), p, 'latin1'); p += 50;
  buf.writeUInt32LE(0, p); p += 4;
  buf[p++] = HEADER;
  POST_HEADER_LENGTHS.copy(buf, p); p += POST_HEADER_LENGTHS.length;
  buf[p] = BINLOG_CHECKSUM_ALG_CRC32;
  return seal(buf);
}

/** The source's TABLE_MAP event with the destination's schema and table names and this statement's table id. */
function tableMap(m: TableMapImage, dest: TableRef, tableId: number, serverId: number): Buffer {
  const db = Buffer.from(dest.schema, 'utf8');
  const tb = Buffer.from(dest.table, 'utf8');
  const rest = m.body.length - m.restAt;
  const buf = Buffer.allocUnsafe(HEADER + 8 + 1 + db.length + 1 + 1 + tb.length + 1 + rest + CHECKSUM);
  header(buf, TABLE_MAP_EVENT, serverId);
  let p = HEADER;
  buf.writeUIntLE(tableId, p, 6); p += 6;
  m.body.copy(buf, p, 6, 8); p += 2;
  buf[p++] = db.length; db.copy(buf, p); p += db.length; buf[p++] = 0;
  buf[p++] = tb.length; tb.copy(buf, p); p += tb.length; buf[p++] = 0;
  m.body.copy(buf, p, m.restAt); p += rest;
  return seal(buf);
}

/** Rows events of `type` holding these images (after images only for Write_rows), STMT_END_F on the last one when `last`. */
function rowsEvents(out: Buffer[], images: RowImage[], type: number, columns: number, tableId: number, serverId: number, last: boolean): void {
  const bitmapBytes = (columns + 7) >> 3;
  const pairs = type === UPDATE_ROWS_EVENT_V1;
  const countBytes = columns < 251 ? 1 : columns < 65536 ? 3 : 4;
  const prefix = HEADER + 8 + countBytes + bitmapBytes * (pairs ? 2 : 1);
  for (let from = 0; from < images.length;) {
    let to = from;
    let bytes = 0;
    while (to < images.length && (to === from || bytes < EVENT_ROW_BYTES)) {
      const img = images[to]!;
      bytes += pairs ? img.end - img.start : img.end - img.mid;
      to++;
    }
    const buf = Buffer.allocUnsafe(prefix + bytes + CHECKSUM);
    header(buf, type, serverId);
    let p = HEADER;
    buf.writeUIntLE(tableId, p, 6); p += 6;
    buf.writeUInt16LE(last && to === images.length ? STMT_END_F : 0, p); p += 2;
    if (countBytes === 1) buf[p++] = columns;
    else if (countBytes === 3) { buf[p++] = 0xfc; buf.writeUInt16LE(columns, p); p += 2; }
    else { buf[p++] = 0xfd; buf.writeUIntLE(columns, p, 3); p += 3; }
    for (let b = 0; b < bitmapBytes * (pairs ? 2 : 1); b++) {
      const i = b % bitmapBytes;
      buf[p++] = i === bitmapBytes - 1 && columns % 8 !== 0 ? (1 << (columns % 8)) - 1 : 0xff;
    }
    for (let i = from; i < to; i++) {
      const img = images[i]!;
      const s = pairs ? img.start : img.mid;
      img.block.bytes.copy(buf, p, s, img.end);
      p += img.end - s;
    }
    out.push(seal(buf));
    from = to;
  }
}
