/**
 * Initial copy of MariaDB/MySQL tables with mysql2. Chunks are primary-key
 * ranges found by ordered key sampling (every `chunkRows`-th key); each chunk
 * is read in its own `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`
 * as one streamed, key-ordered query, batched for the caller. Values go
 * through mysql-values.ts, the same conversion the binlog capture uses.
 *
 * Tables without a usable key are one chunk read by a full scan; downstream
 * the full row is the key.
 */
import type { Connection as CoreConnection } from 'mysql2';
import type mysql from 'mysql2/promise';
import type { ColumnType, Row, SourcePosition } from '../change-event.ts';
import type { DbConnectionConfig, TableFilter } from '../connection-config.ts';
import { classify, FatalError } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import type { ChunkBounds, TableInfo } from '../table-info.ts';
import { binlogEnd, gtidAt, openMysql, serverInfo } from '../capture/mysql-connection.ts';
import { listTableInfos, quoteIdent, quoteTable } from '../capture/mysql-schema.ts';
import { toParam, toValue } from '../capture/mysql-values.ts';
import { CopyTextFallback, type CopyTextBatch, type ReadChunkOptions, type SnapshotReader } from './snapshot-reader.ts';
import { binlogCover } from './snapshot-cover.ts';

export interface MysqlSnapshotOptions {
  connection: DbConnectionConfig;
  /** Default: silent. */
  logger?: Logger;
}

export class MysqlSnapshotReader implements SnapshotReader {
  private db?: mysql.Connection;
  private closing?: Promise<void>;
  private readonly log: Logger;

  constructor(private readonly options: MysqlSnapshotOptions) {
    if (options.connection.kind !== 'mysql') throw new FatalError(`MysqlSnapshotReader needs a mysql connection, got "${options.connection.kind}"`);
    this.log = (options.logger ?? silentLogger).child({ component: 'mysql-snapshot' });
  }

  private async conn(): Promise<mysql.Connection> {
    if (this.closing) throw new FatalError('snapshot reader is closed');
    this.db ??= await openMysql(this.options.connection);
    return this.db;
  }

  async listTables(filter: TableFilter): Promise<TableInfo[]> {
    try {
      return await listTableInfos(await this.conn(), filter);
    } catch (err) {
      throw classify(err);
    }
  }

  async planChunks(table: TableInfo, chunkRows: number, opts: { evenRanges?: boolean } = {}): Promise<ChunkBounds[]> {
    if (table.key.length === 0) return [{ index: 0 }];
    if (!(chunkRows >= 1)) throw new FatalError(`chunkRows must be >= 1, got ${chunkRows}`);
    const db = await this.conn();
    const keyCols = keyColumns(table);
    const spread = opts.evenRanges ? await spreadIntegerChunks(db, table, keyCols, chunkRows).catch((err: unknown) => { throw classify(err); }) : undefined;
    if (spread) return spread;
    const keyList = keyCols.map((c) => quoteIdent(c.name)).join(', ');
    const chunks: ChunkBounds[] = [];
    let after: Row | undefined;
    try {
      for (;;) {
        // The last key of the next chunk: skip chunkRows-1 keys past the previous bound.
        const where = after ? `WHERE ${afterPredicate(keyCols).sql}` : '';
        const params = after ? afterPredicate(keyCols).params(after) : [];
        const [rows] = await db.query(
          `SELECT ${keyList} FROM ${quoteTable(table.schema, table.table)} ${where} ORDER BY ${keyList} LIMIT 1 OFFSET ${Math.floor(chunkRows) - 1}`,
          params,
        );
        const raw = (rows as Record<string, unknown>[])[0];
        if (!raw) {
          chunks.push({ index: chunks.length, ...(after ? { after } : {}) });
          return chunks;
        }
        const upTo: Row = {};
        for (const c of keyCols) upTo[c.name] = toValue(c, raw[c.name]);
        chunks.push({ index: chunks.length, ...(after ? { after } : {}), upTo });
        after = upTo;
      }
    } catch (err) {
      throw classify(err);
    }
  }

  readChunk(table: TableInfo, chunk: ChunkBounds, batchRows: number, opts: ReadChunkOptions = {}): AsyncIterable<Row[]> {
    return this.chunkBatches(table, chunk, Math.max(1, Math.floor(batchRows)), opts);
  }

  private async *chunkBatches(table: TableInfo, chunk: ChunkBounds, batchRows: number, opts: ReadChunkOptions): AsyncGenerator<Row[]> {
    // A connection per chunk: chunks may be read concurrently, each in its own snapshot.
    const db = await openMysql(this.options.connection);
    try {
      await db.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      // A keyless table's copy cannot be upserted over: say which stream changes it holds (MariaDB's
      // binlog_snapshot_* are the binlog position of this very snapshot; MySQL has none).
      if ((table.key.length === 0 || opts.coverKeyed) && opts.onCover) {
        const [st] = await db.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
        const status = Object.fromEntries((st as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]));
        if (status.binlog_snapshot_file) opts.onCover(binlogCover(status.binlog_snapshot_file, Number(status.binlog_snapshot_position)));
        else if (table.key.length === 0) this.log.warn({ table: `${table.schema}.${table.table}` }, 'no binlog_snapshot_position (MySQL): a keyless table written during its snapshot may get duplicates');
      }
      const { sql, params } = chunkQuery(table, chunk);
      // Streaming needs the callback connection under the promise wrapper (untyped there).
      const core = (db as unknown as { connection: CoreConnection }).connection;
      const stream = core.query({ sql, values: params }).stream({ highWaterMark: Math.min(batchRows, 1000) });
      let batch: Row[] = [];
      for await (const raw of stream as AsyncIterable<Record<string, unknown>>) {
        batch.push(convertSnapshotRow(raw, table.columns));
        if (batch.length >= batchRows) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
      await db.query('COMMIT');
    } catch (err) {
      throw classify(err);
    } finally {
      await db.end().catch(() => db.destroy());
    }
  }

  /**
   * The chunk as PostgreSQL COPY text built by the server (copyTextSelect):
   * no row objects, no per-value conversion here, the line's bytes go to the
   * destination as they arrive. Only integer, decimal, text and datetime
   * columns (`safe` decides which of those the destination takes as they are).
   */
  readChunkCopyText(table: TableInfo, chunk: ChunkBounds, batchRows: number, safe: (c: ColumnType) => boolean): AsyncIterable<CopyTextBatch> | undefined {
    if (table.key.length === 0 || !table.columns.every((c) => COPY_TEXT_KINDS.has(c.kind) && safe(c))) return undefined;
    return this.copyTextBatches(table, chunk, Math.max(1, Math.floor(batchRows)));
  }

  private async *copyTextBatches(table: TableInfo, chunk: ChunkBounds, batchRows: number): AsyncGenerator<CopyTextBatch> {
    const db = await openMysql(this.options.connection);
    let finished = false;
    try {
      await db.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const { sql, params } = chunkQuery(table, chunk, copyTextSelect(table));
      const core = (db as unknown as { connection: CoreConnection }).connection;
      // One column per row, taken as the raw bytes of the server's text (utf8mb4, as the destination's client encoding).
      // The query's row events are read directly (no object stream and no await per row: the process's CPU while
      // copying a million rows went from 0.98 to 0.80 s in the snapshot bench, issue 12); the connection pauses
      // while READ_AHEAD batches wait for the caller.
      const query = core.query({ sql, values: params, rowsAsArray: true, typeCast: (field) => field.buffer() }) as unknown as RowEvents;
      const ready: CopyTextBatch[] = [];
      let lines: Buffer[] = [];
      let bytes = 0;
      let failure: unknown;
      let ended = false;
      let paused = false;
      let wake: (() => void) | undefined;
      const cut = () => { ready.push({ rows: lines.length, text: joinLines(lines, bytes) }); lines = []; bytes = 0; };
      query.on('result', (raw: (Buffer | null)[]) => {
        if (failure !== undefined) return;
        const line = raw[0];
        if (line === null || line === undefined) failure = new CopyTextFallback('a zero date or a row longer than max_allowed_packet');
        else if (line.indexOf(0) !== -1) failure = new CopyTextFallback('a NUL character in text');
        if (failure !== undefined) { wake?.(); return; }
        lines.push(line!);
        bytes += line!.length + 1;
        if (lines.length >= batchRows) {
          cut();
          if (ready.length >= READ_AHEAD && !paused) { paused = true; core.pause(); }
          wake?.();
        }
      });
      query.on('error', (err: unknown) => { failure ??= err; wake?.(); });
      query.on('end', () => { if (lines.length > 0) cut(); ended = true; wake?.(); });
      for (;;) {
        if (failure !== undefined) throw failure;
        const batch = ready.shift();
        if (batch) {
          if (paused && ready.length < READ_AHEAD) { paused = false; core.resume(); }
          yield batch;
          continue;
        }
        if (ended) break;
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = undefined;
      }
      await db.query('COMMIT');
      finished = true;
    } catch (err) {
      if (err instanceof CopyTextFallback) throw err;
      throw classify(err);
    } finally {
      // Left mid-stream (fallback, error, the caller stopped): the query still runs, so the connection is dropped.
      if (!finished) db.destroy();
      else await db.end().catch(() => db.destroy());
    }
  }

  /**
   * MariaDB: the binlog file/pos of a consistent snapshot
   * (binlog_snapshot_file/position) and the GTID state at exactly that point.
   * MySQL lacks those status variables; there the current end is used.
   */
  async position(): Promise<SourcePosition> {
    const db = await openMysql(this.options.connection);
    try {
      const info = await serverInfo(db);
      await db.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      const [rows] = await db.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
      const status = Object.fromEntries((rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]));
      await db.query('COMMIT');
      let file = status.binlog_snapshot_file;
      let pos = Number(status.binlog_snapshot_position);
      if (!file) {
        const end = await binlogEnd(db);
        if (!end) throw new FatalError('binary logging is off on the source (log_bin=OFF): no snapshot position');
        ({ file, pos } = end);
      }
      const gtid = await gtidAt(db, info, file, pos);
      this.log.debug({ file, pos, gtid }, 'snapshot position');
      return { kind: 'mysql', file, pos, ...(gtid !== undefined ? { gtid } : {}) };
    } catch (err) {
      throw classify(err);
    } finally {
      await db.end().catch(() => db.destroy());
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try { await this.db?.end(); } catch { this.db?.destroy(); }
      this.db = undefined;
    })();
    return this.closing;
  }
}

/**
 * Chunks of a table keyed by one integer column whose keys are dense (the table's estimated rows at least half
 * of its key span, as with an AUTO_INCREMENT key): key ranges of equal width, from MIN and MAX alone. Why (issue
 * 12, snapshot bench): finding each bound by skipping chunkRows keys read the whole key order once, chunk after
 * chunk, before the first chunk could start (a tenth of a 1M-row migration). Any partition of the key space is
 * a correct one (every row falls in exactly one range, the last one open); the estimate only decides the ranges'
 * width, so a wrong one makes chunks uneven, never wrong. Undefined for other keys, sparse keys or no estimate.
 */
async function spreadIntegerChunks(db: mysql.Connection, table: TableInfo, keyCols: ColumnType[], chunkRows: number): Promise<ChunkBounds[] | undefined> {
  const [col] = keyCols;
  if (keyCols.length !== 1 || col!.kind !== 'int' || col!.family === 'year' || !(table.estimatedRows > 0)) return undefined;
  const q = quoteIdent(col!.name);
  const [rows] = await db.query({ sql: `SELECT CAST(MIN(${q}) AS CHAR) AS lo, CAST(MAX(${q}) AS CHAR) AS hi FROM ${quoteTable(table.schema, table.table)}` });
  const r = (rows as { lo: string | null; hi: string | null }[])[0];
  if (!r || r.lo === null || r.hi === null) return [{ index: 0 }];
  const lo = BigInt(r.lo);
  const hi = BigInt(r.hi);
  const span = hi - lo + 1n;
  const estimated = BigInt(Math.ceil(table.estimatedRows));
  if (estimated * 2n < span) return undefined;
  // Width of a range holding about chunkRows keys at this density.
  const width = (BigInt(Math.floor(chunkRows)) * span + estimated - 1n) / estimated;
  const bound = (v: bigint): Row => ({ [col!.name]: toValue(col!, v.toString()) });
  const chunks: ChunkBounds[] = [];
  let after: Row | undefined;
  for (let upTo = lo - 1n + width; upTo < hi; upTo += width) {
    const b = bound(upTo);
    chunks.push({ index: chunks.length, ...(after ? { after } : {}), upTo: b });
    after = b;
  }
  chunks.push({ index: chunks.length, ...(after ? { after } : {}) });
  return chunks;
}

function keyColumns(table: TableInfo): ColumnType[] {
  return table.key.map((k) => {
    const c = table.columns.find((col) => col.name === k);
    if (!c) throw new FatalError(`key column ${k} not found in ${table.schema}.${table.table}`);
    return c;
  });
}

/**
 * `key > after` as a row-value comparison. The redundant `first >= ?` lets
 * the optimiser use a range scan on the key's leading column, which row
 * comparisons alone do not always get.
 */
function afterPredicate(keyCols: ColumnType[]): { sql: string; params: (row: Row) => unknown[] } {
  const cols = keyCols.map((c) => quoteIdent(c.name));
  const marks = keyCols.map(() => '?').join(', ');
  const first = keyCols[0]!;
  if (keyCols.length === 1) {
    return { sql: `${cols[0]} > ?`, params: (row) => [toParam(first, row[first.name] ?? null)] };
  }
  return {
    sql: `${cols[0]} >= ? AND (${cols.join(', ')}) > (${marks})`,
    params: (row) => [toParam(first, row[first.name] ?? null), ...keyCols.map((c) => toParam(c, row[c.name] ?? null))],
  };
}

function upToPredicate(keyCols: ColumnType[]): { sql: string; params: (row: Row) => unknown[] } {
  const cols = keyCols.map((c) => quoteIdent(c.name));
  const first = keyCols[0]!;
  if (keyCols.length === 1) {
    return { sql: `${cols[0]} <= ?`, params: (row) => [toParam(first, row[first.name] ?? null)] };
  }
  return {
    sql: `${cols[0]} <= ? AND (${cols.join(', ')}) <= (${keyCols.map(() => '?').join(', ')})`,
    params: (row) => [toParam(first, row[first.name] ?? null), ...keyCols.map((c) => toParam(c, row[c.name] ?? null))],
  };
}

/** FLOAT is selected as DOUBLE: the server's FLOAT text keeps only 6 digits, the binlog has all 24 bits. */
function selectExpr(c: ColumnType): string {
  const q = quoteIdent(c.name);
  return c.kind === 'float' && c.size === 4 ? `(${q} + 0e0) AS ${q}` : q;
}

/** Kinds the server can render as PostgreSQL COPY text exactly as the row path would (see pgCopyTextSafe). */
const COPY_TEXT_KINDS = new Set<ColumnType['kind']>(['int', 'decimal', 'text', 'datetime']);

/** `CHAR(codes USING utf8mb4)`: literal characters without depending on the session's sql_mode (NO_BACKSLASH_ESCAPES). */
const chars = (...codes: number[]): string => `CHAR(${codes.join(', ')} USING utf8mb4)`;

/**
 * One PostgreSQL COPY text line per row (text format), as copyText
 * (apply/pg-copy.ts) writes it: fields joined by a tab, NULL as \N, and in
 * text \ \n \r \t escaped (in this order, so an escape is never escaped
 * again). Integers, decimals and datetimes are the server's own text, the
 * text the row path reads and sends unchanged. A zero date makes the whole
 * line NULL (PostgreSQL has none: the row path then fails with its message).
 */
function copyTextSelect(table: TableInfo): string {
  const fields = table.columns.map((c) => {
    let e = quoteIdent(c.name);
    if (c.kind === 'text') {
      e = `CONVERT(${e} USING utf8mb4)`;
      for (const [from, to] of [[92, 92], [10, 110], [13, 114], [9, 116]] as const) e = `REPLACE(${e}, ${chars(from)}, ${chars(92, to)})`;
    }
    return `IFNULL(${e}, ${chars(92, 78)})`;
  });
  const line = `CONCAT_WS(${chars(9)}, ${fields.join(', ')})`;
  const zero = table.columns.filter((c) => c.kind === 'datetime').map((c) => {
    const q = quoteIdent(c.name);
    return `(${q} IS NOT NULL AND (YEAR(${q}) = 0 OR MONTH(${q}) = 0 OR DAYOFMONTH(${q}) = 0))`;
  });
  return zero.length ? `IF(${zero.join(' OR ')}, NULL, ${line}) AS t` : `${line} AS t`;
}

/** COPY text batches a chunk read holds ready for its caller before the connection pauses. */
const READ_AHEAD = 2;

/** The row events of mysql2's core query (its typings do not declare them). */
interface RowEvents { on(event: 'result', fn: (row: (Buffer | null)[]) => void): RowEvents; on(event: 'error', fn: (err: unknown) => void): RowEvents; on(event: 'end', fn: () => void): RowEvents }

function joinLines(lines: Buffer[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const l of lines) {
    at += l.copy(out, at);
    out[at++] = 10;
  }
  return out;
}

function chunkQuery(table: TableInfo, chunk: ChunkBounds, selectList = table.columns.map(selectExpr).join(', ')): { sql: string; params: unknown[] } {
  const select = `SELECT ${selectList} FROM ${quoteTable(table.schema, table.table)}`;
  if (table.key.length === 0) return { sql: select, params: [] };
  const keyCols = keyColumns(table);
  const conds: string[] = [];
  const params: unknown[] = [];
  if (chunk.after) {
    const p = afterPredicate(keyCols);
    conds.push(p.sql);
    params.push(...p.params(chunk.after));
  }
  if (chunk.upTo) {
    const p = upToPredicate(keyCols);
    conds.push(p.sql);
    params.push(...p.params(chunk.upTo));
  }
  const where = conds.length ? ` WHERE ${conds.join(' AND ')}` : '';
  return { sql: `${select}${where} ORDER BY ${keyCols.map((c) => quoteIdent(c.name)).join(', ')}`, params };
}

function convertSnapshotRow(raw: Record<string, unknown>, columns: ColumnType[]): Row {
  const row: Row = {};
  for (const c of columns) row[c.name] = toValue(c, raw[c.name]);
  return row;
}
