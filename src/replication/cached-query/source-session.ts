/**
 * What the cached-query upkeep asks of a source database. Every statement
 * runs in a READ ONLY transaction with a statement timeout, so even a query
 * that slipped past validation cannot write or run away.
 *
 * A baseline is read in a consistent snapshot whose position is known
 * (PostgreSQL: the snapshot's xmin:xmax:xip; MariaDB: binlog_snapshot_file
 * and _position of START TRANSACTION WITH CONSISTENT SNAPSHOT), so that the
 * feed's changes already inside it can be skipped exactly (`hiddenByBaseline`).
 */
import pg from 'pg';
import type mysql from 'mysql2/promise';
import type { ChangeEvent, ColumnType, Value } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import { classify } from '../errors.ts';
import { pgClientConfig, quoteIdent as pgQuoteIdent, RAW_TEXT_TYPES } from '../capture/pg-connection.ts';
import { loadTableColumns } from '../capture/pg-catalog.ts';
import { pgTextToValue } from '../capture/pg-values.ts';
import { binlogEnd, openMysql } from '../capture/mysql-connection.ts';
import { loadTableInfo } from '../capture/mysql-schema.ts';
import { toValue } from '../capture/mysql-values.ts';
import { isVisibleInSnapshot, parseSnapshot } from '../feed/snapshot-filter.ts';
import { binlogFileNumber, commitNumber } from '../sequence.ts';
import type { TextFold } from './where-filter.ts';

export type BaselineFilter = { kind: 'postgres'; snapshot: string } | { kind: 'mysql'; file: string; pos: number };

/** Whether `ev` is already inside the baseline (committed before its snapshot). */
export function hiddenByBaseline(ev: ChangeEvent, f: BaselineFilter): boolean {
  if (f.kind === 'postgres') return ev.source === 'postgres' && /^\d+$/.test(ev.txid) && isVisibleInSnapshot(ev.txid, parseSnapshot(f.snapshot));
  // A MariaDB sequence is (binlog file number, offset of the transaction's first event).
  return commitNumber(ev.sequence) < (binlogFileNumber(f.file) << 32n) + BigInt(f.pos);
}

export interface SourceTable {
  schema: string;
  table: string;
  columns: ColumnType[];
  /** Text folding for columns with a case- or accent-insensitive collation (MariaDB). */
  folds: Map<string, TextFold>;
}

export interface QueryResult { columns: string[]; rows: Value[][] }

/** A source error in the query itself (syntax, unknown column, permission): re-running will not help. */
export class SourceQueryError extends Error {
  override readonly name = 'SourceQueryError';
}

export interface SourceSession {
  resolveTable(schema: string | null, name: string): Promise<SourceTable | undefined>;
  /** EXPLAIN the query: the source checks it without running it. */
  explain(sql: string): Promise<void>;
  /** Run a query; values as Tributary's JSON-safe values. */
  run(sql: string, params?: Value[]): Promise<QueryResult>;
  /** Run a query in a consistent snapshot and say which feed changes it already contains. Values converted with `types`. */
  baseline(sql: string, types: (ColumnType | undefined)[]): Promise<{ rows: Value[][]; filter: BaselineFilter }>;
  close(): Promise<void>;
}

export function openSourceSession(conn: DbConnectionConfig, statementTimeoutMs: number): SourceSession {
  return conn.kind === 'postgres' ? new PgSession(conn, statementTimeoutMs) : new MysqlSession(conn, statementTimeoutMs);
}

const QUERY_ERROR_PG = /^(42|22|2F|38|39|0A)/;
const QUERY_ERROR_MY = new Set([1054, 1064, 1146, 1142, 1143, 1049, 1052, 1055, 1056, 1111, 1140, 1248, 1305, 1584, 1792, 1969, 3024]);

function wrap(err: unknown): Error {
  const e = err as { code?: string; errno?: number; message?: string };
  if (typeof e?.code === 'string' && QUERY_ERROR_PG.test(e.code) && !e.errno) return new SourceQueryError(e.message ?? String(err), { cause: err });
  if (typeof e?.errno === 'number' && QUERY_ERROR_MY.has(e.errno)) return new SourceQueryError(e.message ?? String(err), { cause: err });
  if (e?.code === '57014') return new SourceQueryError(`the query ran longer than the statement timeout: ${e.message}`, { cause: err });
  return classify(err);
}

/** PostgreSQL type OIDs whose text we turn into numbers/booleans; everything else stays text. */
function pgFieldValue(text: string | null, oid: number): Value {
  if (text === null) return null;
  switch (oid) {
    case 16: return text === 't';
    case 20: case 21: case 23: case 26: { const n = Number(text); return Number.isSafeInteger(n) ? n : text; }
    case 700: case 701: return text === 'NaN' || /Infinity/.test(text) ? text : Number(text);
    default: return text;
  }
}

class PgSession implements SourceSession {
  private readonly pool: pg.Pool;
  private closing?: Promise<void>;

  constructor(conn: DbConnectionConfig, private readonly timeoutMs: number) {
    this.pool = new pg.Pool({ ...pgClientConfig(conn), types: RAW_TEXT_TYPES, max: 2, idleTimeoutMillis: 30_000 });
    this.pool.on('error', () => undefined);
  }

  private async inTx<T>(fn: (c: pg.PoolClient) => Promise<T>, isolation = 'READ COMMITTED'): Promise<T> {
    const c = await this.pool.connect().catch((err: unknown) => { throw classify(err); });
    let done = false;
    try {
      await c.query(`BEGIN ISOLATION LEVEL ${isolation} READ ONLY`);
      await c.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(this.timeoutMs))}`);
      const out = await fn(c);
      await c.query('COMMIT');
      done = true;
      return out;
    } catch (err) {
      throw wrap(err);
    } finally {
      if (!done) await c.query('ROLLBACK').catch(() => undefined);
      c.release();
    }
  }

  async resolveTable(schema: string | null, name: string): Promise<SourceTable | undefined> {
    return this.inTx(async (c) => {
      for (const candidate of [name, name.toLowerCase()]) {
        const ref = schema ? `${pgQuoteIdent(schema)}.${pgQuoteIdent(candidate)}` : pgQuoteIdent(candidate);
        const r = await c.query<{ oid: string; nspname: string; relname: string }>(
          `SELECT c.oid::int8::text AS oid, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`, [ref]);
        const row = r.rows[0];
        if (row) return { schema: row.nspname, table: row.relname, columns: await loadTableColumns(c, Number(row.oid)), folds: new Map() };
      }
      return undefined;
    });
  }

  async explain(sql: string): Promise<void> {
    await this.inTx((c) => c.query(`EXPLAIN ${sql}`));
  }

  async run(sql: string, params: Value[] = []): Promise<QueryResult> {
    return this.inTx(async (c) => {
      const r = await c.query<unknown[]>({ text: sql, values: params, rowMode: 'array' });
      return { columns: r.fields.map((f) => f.name), rows: r.rows.map((row) => row.map((v, i) => pgFieldValue(v as string | null, r.fields[i]!.dataTypeID))) };
    });
  }

  async baseline(sql: string, types: (ColumnType | undefined)[]): Promise<{ rows: Value[][]; filter: BaselineFilter }> {
    return this.inTx(async (c) => {
      let snap: string;
      try {
        snap = (await c.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s')).rows[0]!.s;
      } catch {
        snap = (await c.query<{ s: string }>('SELECT txid_current_snapshot()::text AS s')).rows[0]!.s;
      }
      const r = await c.query<unknown[]>({ text: sql, rowMode: 'array' });
      const rows = r.rows.map((row) => row.map((v, i) => {
        const t = types[i];
        return t ? pgTextToValue(v as string | null, t) : pgFieldValue(v as string | null, r.fields[i]!.dataTypeID);
      }));
      return { rows, filter: { kind: 'postgres', snapshot: snap } };
    }, 'REPEATABLE READ');
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end().catch(() => undefined);
    return this.closing;
  }
}

/** MariaDB collations: `_ci` folds case, all but `_as_`/`_bin` also accents; PAD SPACE (all but `_nopad_`) ignores trailing spaces. */
export function foldFor(collation: string | null): TextFold | undefined {
  if (!collation || /_bin$|^binary$/i.test(collation)) return undefined;
  const c = collation.toLowerCase();
  const caseless = /_ci$|_ci_|_ai_ci/.test(c);
  const accentless = caseless && !/_as_/.test(c);
  const pad = !c.includes('nopad');
  return (s) => {
    let t = pad ? s.replace(/ +$/, '') : s;
    if (caseless) t = t.toLowerCase();
    if (accentless) t = t.normalize('NFD').replace(/\p{M}/gu, '');
    return t;
  };
}

const MY_INT_TYPES = new Set([1, 2, 3, 8, 9, 13]);

class MysqlSession implements SourceSession {
  private conn?: Promise<mysql.Connection>;
  private closing?: Promise<void>;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly config: DbConnectionConfig, private readonly timeoutMs: number) {}

  private connection(): Promise<mysql.Connection> {
    this.conn ??= (async () => {
      const c = await openMysql(this.config);
      const sec = Math.max(0.001, this.timeoutMs / 1000);
      // MariaDB: max_statement_time (seconds); MySQL: max_execution_time (ms, SELECT only).
      await c.query(`SET SESSION max_statement_time = ${sec}`).catch(() => c.query(`SET SESSION max_execution_time = ${Math.ceil(this.timeoutMs)}`).catch(() => undefined));
      return c;
    })();
    this.conn.catch(() => { this.conn = undefined; });
    return this.conn;
  }

  /** One connection, one statement sequence at a time. */
  private inTx<T>(start: string, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      const c = await this.connection();
      let done = false;
      try {
        await c.query(start);
        const out = await fn(c);
        await c.query('COMMIT');
        done = true;
        return out;
      } catch (err) {
        if ((err as { fatal?: boolean }).fatal) { this.conn = undefined; c.destroy(); }
        throw wrap(err);
      } finally {
        if (!done) await c.query('ROLLBACK').catch(() => undefined);
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async resolveTable(schema: string | null, name: string): Promise<SourceTable | undefined> {
    const db = schema ?? this.config.database;
    if (!db) return undefined;
    return this.inTx('START TRANSACTION READ ONLY', async (c) => {
      const info = await loadTableInfo(c, db, name);
      if (!info) return undefined;
      const [rows] = await c.query('SELECT COLUMN_NAME AS c, COLLATION_NAME AS k FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [db, name]);
      const folds = new Map<string, TextFold>();
      for (const r of rows as { c: string; k: string | null }[]) { const f = foldFor(r.k); if (f) folds.set(r.c, f); }
      return { schema: info.schema, table: info.table, columns: info.columns, folds };
    });
  }

  async explain(sql: string): Promise<void> {
    await this.inTx('START TRANSACTION READ ONLY', async (c) => {
      if (this.config.database) await c.query(`USE \`${this.config.database.replace(/`/g, '``')}\``);
      await c.query(`EXPLAIN ${sql}`);
    });
  }

  private convert(rows: unknown[][], fields: { name: string; columnType?: number; type?: number }[]): Value[][] {
    return rows.map((row) => row.map((v, i) => {
      if (v === null || v === undefined) return null;
      const t = fields[i]?.columnType ?? fields[i]?.type;
      if (t !== undefined && MY_INT_TYPES.has(t)) { const n = Number(v); return Number.isSafeInteger(n) ? n : String(v); }
      if (t === 4 || t === 5) return Number(v);
      if (Buffer.isBuffer(v)) return v.toString('base64');
      return typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' ? v : String(v);
    }));
  }

  async run(sql: string, params: Value[] = []): Promise<QueryResult> {
    return this.inTx('START TRANSACTION READ ONLY', async (c) => {
      if (this.config.database) await c.query(`USE \`${this.config.database.replace(/`/g, '``')}\``);
      const [rows, fields] = await c.query({ sql, values: params, rowsAsArray: true });
      const f = (fields ?? []) as unknown as { name: string; columnType?: number; type?: number }[];
      return { columns: f.map((x) => x.name), rows: this.convert(rows as unknown[][], f) };
    });
  }

  async baseline(sql: string, types: (ColumnType | undefined)[]): Promise<{ rows: Value[][]; filter: BaselineFilter }> {
    return this.inTx('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY', async (c) => {
      if (this.config.database) await c.query(`USE \`${this.config.database.replace(/`/g, '``')}\``);
      const [status] = await c.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
      const s = Object.fromEntries((status as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]));
      let file = s.binlog_snapshot_file; let pos = Number(s.binlog_snapshot_position);
      if (!file) {
        // MySQL has no binlog_snapshot_*: the end of the log read in the snapshot is the closest it offers.
        const end = await binlogEnd(c);
        if (!end) throw new SourceQueryError('binary logging is off on the source: no position for the baseline');
        file = end.file; pos = end.pos;
      }
      const [rows, fields] = await c.query({ sql, rowsAsArray: true });
      const f = (fields ?? []) as unknown as { name: string; columnType?: number; type?: number }[];
      const raw = rows as unknown[][];
      const converted = raw.map((row, ri) => row.map((v, i) => {
        const t = types[i];
        return t ? toValue(t, v) : this.convert([raw[ri]!], f)[0]![i]!;
      }));
      return { rows: converted, filter: { kind: 'mysql', file: file!, pos } };
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const c = await this.conn?.catch(() => undefined);
      await c?.end().catch(() => c.destroy());
    })();
    return this.closing;
  }
}
