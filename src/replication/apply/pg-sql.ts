/**
 * SQL text for the PostgreSQL applier. Values always travel as parameters;
 * only identifiers and type names (from type-map.ts) are spliced in, quoted.
 */
import type { ColumnType, Row } from '../change-event.ts';
import type { TableRef } from './batch-plan.ts';
import type { LedgerSql } from './sql-applier.ts';
import { pgColumnDef } from './type-map.ts';
import pg from 'pg';
import { toPgParam, type ValueSite } from './value-params.ts';

/** PostgreSQL's limit on bind parameters in one statement. */
export const PG_MAX_PARAMS = 65535;
export const META_SCHEMA = 'tributary';
export const CHECKPOINTS = `${META_SCHEMA}.tributary_checkpoints`;
export const CHUNKS = `${META_SCHEMA}.tributary_snapshot_chunks`;

export function qi(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qt(ref: TableRef): string {
  return `${qi(ref.schema)}.${qi(ref.table)}`;
}

export const META_DDL = [
  `CREATE SCHEMA IF NOT EXISTS ${META_SCHEMA}`,
  `CREATE TABLE IF NOT EXISTS ${CHECKPOINTS} (
     job_id text NOT NULL, lane int NOT NULL, sequence text NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job_id, lane))`,
  // covers: what a keyless table's copy holds of the stream (replication/snapshot/snapshot-cover.ts).
  `CREATE TABLE IF NOT EXISTS ${CHUNKS} (
     job_id text NOT NULL, chunk_id text NOT NULL, done_at timestamptz, covers text,
     PRIMARY KEY (job_id, chunk_id))`,
  // Destinations set up before covers existed (checked first: no lock on the table when it is there).
  `DO $$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = '${META_SCHEMA}' AND table_name = 'tributary_snapshot_chunks' AND column_name = 'covers') THEN
       ALTER TABLE ${CHUNKS} ADD COLUMN covers text;
     END IF;
   END $$`,
];

/**
 * True when META_DDL has nothing left to do (the tables there, covers
 * included): a catalog lookup instead of the DDL under the DDL lock and an
 * information_schema query, for the appliers every snapshot chunk opens.
 */
export const META_READY_SQL = `SELECT to_regclass('${CHECKPOINTS}') IS NOT NULL AND EXISTS (
    SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${CHUNKS}') AND attname = 'covers' AND NOT attisdropped) AS ready`;

/** The applier's bookkeeping statements (sql-applier.ts). */
export const PG_LEDGER: LedgerSql = {
  readCheckpoint: `SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = $1 AND lane = $2`,
  lockCheckpoint: `SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = $1 AND lane = $2 FOR UPDATE`,
  writeCheckpoint: `INSERT INTO ${CHECKPOINTS} (job_id, lane, sequence, updated_at) VALUES ($1, $2, $3, now())
    ON CONFLICT (job_id, lane) DO UPDATE SET sequence = EXCLUDED.sequence, updated_at = EXCLUDED.updated_at`,
  lockLanes: `SELECT lane, sequence FROM ${CHECKPOINTS} WHERE job_id = $1 FOR UPDATE`,
  chunkDone: `SELECT 1 FROM ${CHUNKS} WHERE job_id = $1 AND chunk_id = $2 AND done_at IS NOT NULL`,
  markChunk: `INSERT INTO ${CHUNKS} (job_id, chunk_id, done_at, covers) VALUES ($1, $2, now(), $3)
    ON CONFLICT (job_id, chunk_id) DO UPDATE SET done_at = EXCLUDED.done_at, covers = EXCLUDED.covers`,
  readCover: `SELECT covers FROM ${CHUNKS} WHERE job_id = $1 AND chunk_id = $2`,
  forgetChunks: `DELETE FROM ${CHUNKS} WHERE job_id = $1`,
  emptyTable: (ref) => `TRUNCATE ${qt(ref)}`,
};

/**
 * A ledger statement with its $n parameters written in as SQL text (`args[n - 1]`, already literals), to go
 * in one simple query with BEGIN or COMMIT (pg.applier.ts). The templates hold no other `$`.
 */
function withLiterals(template: string, args: string[]): string {
  return template.replace(/\$(\d+)/g, (_, n: string) => {
    const v = args[Number(n) - 1];
    if (v === undefined) throw new Error(`no value for $${n}`);
    return v;
  });
}

/**
 * The ledger's lock and write with their values as literals (`lit`: the connection's escapeLiteral), for
 * the simple-query protocol: sent together with BEGIN and with COMMIT, each saves a round trip per batch.
 */
export function lockCheckpointText(jobId: string, lane: number, lit: (s: string) => string): string {
  if (!Number.isInteger(lane)) throw new Error(`lane ${lane} is not an integer`);
  return withLiterals(PG_LEDGER.lockCheckpoint, [lit(jobId), String(lane)]);
}

/** PG_LEDGER.writeCheckpoint with its values as literals. */
export function writeCheckpointText(jobId: string, lane: number, sequence: string, lit: (s: string) => string): string {
  if (!Number.isInteger(lane)) throw new Error(`lane ${lane} is not an integer`);
  return withLiterals(PG_LEDGER.writeCheckpoint, [lit(jobId), String(lane), lit(sequence)]);
}

/** All DDL of the applier runs under this advisory lock, so concurrent lanes do not race on CREATE ... IF NOT EXISTS. */
export const DDL_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('tributary.apply.ddl'))`;

function columnSql(col: ColumnType, inKey: boolean): string {
  const def = pgColumnDef(col);
  const check = def.check ? ` CHECK (${def.check(qi(col.name))})` : '';
  return `${qi(col.name)} ${def.type}${inKey ? ' NOT NULL' : ''}${check}`;
}

/**
 * Only the key is NOT NULL: the source enforces its own constraints, and a
 * column added later must accept the rows that were there before it.
 */
export function createTableSql(ref: TableRef, columns: ColumnType[], key: string[]): string {
  const cols = columns.map((c) => columnSql(c, key.includes(c.name)));
  if (key.length) cols.push(`PRIMARY KEY (${key.map(qi).join(', ')})`);
  return `CREATE TABLE IF NOT EXISTS ${qt(ref)} (${cols.join(', ')})`;
}

export function addColumnSql(ref: TableRef, col: ColumnType): string {
  return `ALTER TABLE ${qt(ref)} ADD COLUMN IF NOT EXISTS ${columnSql(col, false)}`;
}

/** The CHECK holding an enum or set column's labels, named so it can be replaced when labels are added. */
export function labelCheckSql(ref: TableRef, col: ColumnType): string | undefined {
  const def = pgColumnDef(col);
  return def.check ? `ALTER TABLE ${qt(ref)} ADD CONSTRAINT ${qi(`${ref.table}_${col.name}_labels`)} CHECK (${def.check(qi(col.name))})` : undefined;
}

/** A column's type changed at the source: the destination column takes the type it maps to now, converting its values. */
export function retypeColumnSql(ref: TableRef, col: ColumnType): string {
  const def = pgColumnDef(col);
  return `ALTER TABLE ${qt(ref)} ALTER COLUMN ${qi(col.name)} TYPE ${def.type} USING ${qi(col.name)}::${def.type}`;
}

export function dropColumnSql(ref: TableRef, name: string): string {
  return `ALTER TABLE ${qt(ref)} DROP COLUMN IF EXISTS ${qi(name)}`;
}

/** `vals`: the values as SQL literals (pgLiterals), row after row, written in place of the $n parameters. */
function valuesList(nCols: number, nRows: number, cast?: string[], vals?: string[]): string {
  const rows: string[] = [];
  let p = 1;
  for (let r = 0; r < nRows; r++) {
    const ps: string[] = [];
    for (let c = 0; c < nCols; c++, p++) {
      const v = vals ? vals[p - 1]! : `$${p}`;
      ps.push(cast ? `${v}::${cast[c]}` : v);
    }
    rows.push(`(${ps.join(', ')})`);
  }
  return rows.join(', ');
}

/** Multi-row INSERT; with `key`, an upsert that rewrites the non-key columns present. `vals`: see valuesList. */
export function insertSql(ref: TableRef, columns: ColumnType[], nRows: number, key?: string[], vals?: string[]): string {
  const names = columns.map((c) => qi(c.name));
  const sql = `INSERT INTO ${qt(ref)} (${names.join(', ')}) VALUES ${valuesList(columns.length, nRows, undefined, vals)}`;
  return key?.length ? `${sql} ${onConflictSql(columns, key)}` : sql;
}

/** The upsert clause: rewrite the non-key columns present (nothing to do for a row of key columns only). */
export function onConflictSql(columns: ColumnType[], key: string[]): string {
  const sets = columns.filter((c) => !key.includes(c.name)).map((c) => `${qi(c.name)} = EXCLUDED.${qi(c.name)}`);
  return `ON CONFLICT (${key.map(qi).join(', ')}) DO ${sets.length ? `UPDATE SET ${sets.join(', ')}` : 'NOTHING'}`;
}

/** DELETE by key; parameters are cast so that numeric keys compare exactly. `vals`: see valuesList. */
export function deleteKeysSql(ref: TableRef, keyCols: ColumnType[], nRows: number, vals?: string[]): string {
  const types = keyCols.map((c) => pgColumnDef(c).type);
  const lhs = keyCols.length === 1 ? qi(keyCols[0]!.name) : `(${keyCols.map((c) => qi(c.name)).join(', ')})`;
  const list = keyCols.length === 1
    ? Array.from({ length: nRows }, (_, i) => `${vals ? vals[i]! : `$${i + 1}`}::${types[0]}`).join(', ')
    : valuesList(keyCols.length, nRows, types, vals);
  return `DELETE FROM ${qt(ref)} WHERE ${lhs} IN (${list})`;
}

/** Types without a usable `=` (json, arbitrary 'other' types) are compared as text. */
function comparable(col: ColumnType, p: number): [string, string] {
  const type = pgColumnDef(col).type;
  if (type === 'json' || col.kind === 'other') return [`${qi(col.name)}::text`, `$${p}::text`];
  return [qi(col.name), `$${p}::${type}`];
}

/** Keyless tables: delete exactly one row equal to the image (ctid picks one of several identical rows). */
export function deleteOneSql(ref: TableRef, columns: ColumnType[]): string {
  const conds = columns.map((c, i) => {
    const [l, r] = comparable(c, i + 1);
    return `${l} IS NOT DISTINCT FROM ${r}`;
  });
  return `DELETE FROM ${qt(ref)} WHERE ctid = (SELECT ctid FROM ${qt(ref)} WHERE ${conds.join(' AND ') || 'true'} LIMIT 1)`;
}

/**
 * The bind parameters of `rows` (pgParams) as SQL literals, for a statement sent by the simple-query
 * protocol: the text node-pg would send for each parameter (its prepareValue), quoted by escapeLiteral,
 * and a Buffer (bytea, which node-pg sends in binary) as its \\x hex text. The server reads a literal of
 * unknown type in a column's place exactly as an untyped text parameter. Undefined when a value has no
 * safe literal (a NUL, which would end the query text): the caller binds parameters instead. Throws
 * what toPgParam throws.
 */
export function pgLiterals(rows: Row[], sites: ValueSite[]): string[] | undefined {
  const out: string[] = [];
  for (const row of rows) {
    for (const s of sites) {
      const v = toPgParam(row[s.column.name], s);
      if (v === null || v === undefined) { out.push('NULL'); continue; }
      const text = paramText(v);
      if (text === undefined || text.includes('\u0000')) return undefined;
      out.push(pg.escapeLiteral(text));
    }
  }
  return out;
}

/** A PostgreSQL array literal of text items, as node-pg writes an array parameter. */
export function arrayLiteral(items: unknown[]): string {
  return `{${items.map((x) => (x === null || x === undefined ? 'NULL' : `"${String(x).replace(/[\\"]/g, (ch) => `\\${ch}`)}"`)).join(',')}}`;
}

/** The text node-pg sends for a value toPgParam returns (its prepareValue), or undefined for another kind of value. */
function paramText(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string': return v;
    case 'number': case 'bigint': case 'boolean': return String(v);
    default:
      if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return arrayLiteral(v);
      return undefined;
  }
}

/**
 * BEGIN's companion when the applier knows what lanes' checkpoints hold (it committed or read them): those
 * lanes' rows locked (FOR UPDATE, as lockCheckpoint locks one), and the statement fails (division by zero)
 * unless every one holds its `expected` sequence, so the writes sent after it in the same query run only on
 * the checkpoints they were planned against.
 */
export function guardCheckpointsText(jobId: string, expected: Map<number, string>): string {
  const lanes = [...expected.keys()];
  if (lanes.length === 0 || !lanes.every((l) => Number.isInteger(l))) throw new Error(`lanes ${lanes.join(', ')} are not integers`);
  const each = [...expected].map(([lane, seq]) => `(lane = ${lane} AND sequence = ${pg.escapeLiteral(seq)})`).join(' OR ');
  return `SELECT 1 / (count(*) FILTER (WHERE ${each}) = ${lanes.length})::int AS checkpoints_as_expected`
    + ` FROM (SELECT lane, sequence FROM ${CHECKPOINTS} WHERE job_id = ${pg.escapeLiteral(jobId)} AND lane IN (${lanes.join(', ')}) FOR UPDATE) AS lane_checkpoints`;
}

/** Where each value of a table's rows goes, for toPgParam's checks and messages. */
export function pgSites(ref: TableRef, columns: ColumnType[]): ValueSite[] {
  const table = `${ref.schema}.${ref.table}`;
  return columns.map((column) => ({ table, column }));
}

/** Bind parameters of `rows` for insertSql, deleteKeysSql or deleteOneSql: row after row, in the order of `sites`. */
export function pgParams(rows: Row[], sites: ValueSite[]): unknown[] {
  const out: unknown[] = [];
  for (const row of rows) for (const s of sites) out.push(toPgParam(row[s.column.name], s));
  return out;
}
