/**
 * SQL text for the MariaDB/MySQL applier. Values travel as `?` parameters
 * that mysql2 escapes client-side; only identifiers and type names (from
 * type-map.ts) are spliced in, quoted.
 */
import type { ColumnType, Row } from '../change-event.ts';
import { FatalError } from '../errors.ts';
import type { TableRef } from './batch-plan.ts';
import type { LedgerSql } from './sql-applier.ts';
import { MYSQL_MAX_KEY_BYTES, mysqlColumnType, mysqlHashedKey, mysqlKeyPartBytes, pgColumnType, type MysqlCaps } from './type-map.ts';
import { toMysqlParam, type ValueSite } from './value-params.ts';

export const META_DB = 'tributary';
export const CHECKPOINTS = '`tributary`.`tributary_checkpoints`';
export const CHUNKS = '`tributary`.`tributary_snapshot_chunks`';
/** Named lock that serialises the applier's DDL across lanes and workers. */
export const DDL_LOCK = 'tributary.apply.ddl';
/** Keep each statement well under MariaDB's default max_allowed_packet (16 MiB). */
export const MAX_STATEMENT_BYTES = 4 * 1024 * 1024;

export function qi(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

export function qt(ref: TableRef): string {
  return `${qi(ref.schema)}.${qi(ref.table)}`;
}

export const META_DDL = [
  `CREATE DATABASE IF NOT EXISTS ${qi(META_DB)} CHARACTER SET utf8mb4`,
  `CREATE TABLE IF NOT EXISTS ${CHECKPOINTS} (
     job_id varchar(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, lane int NOT NULL,
     sequence varchar(64) CHARACTER SET ascii NOT NULL, updated_at datetime(6) NOT NULL,
     PRIMARY KEY (job_id, lane)) ENGINE=InnoDB`,
  // covers: what a keyless table's copy holds of the stream (replication/snapshot/snapshot-cover.ts).
  `CREATE TABLE IF NOT EXISTS ${CHUNKS} (
     job_id varchar(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
     chunk_id varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, done_at datetime(6) NULL,
     covers text CHARACTER SET ascii NULL,
     PRIMARY KEY (job_id, chunk_id)) ENGINE=InnoDB`,
];

/** The applier's bookkeeping statements (sql-applier.ts). DELETE, not TRUNCATE: TRUNCATE would commit the transaction on its own. */
export const MYSQL_LEDGER: LedgerSql = {
  readCheckpoint: `SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = ? AND lane = ?`,
  lockCheckpoint: `SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = ? AND lane = ? FOR UPDATE`,
  writeCheckpoint: `INSERT INTO ${CHECKPOINTS} (job_id, lane, sequence, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
    ON DUPLICATE KEY UPDATE sequence = VALUES(sequence), updated_at = VALUES(updated_at)`,
  lockLanes: `SELECT lane, sequence FROM ${CHECKPOINTS} WHERE job_id = ? FOR UPDATE`,
  chunkDone: `SELECT 1 FROM ${CHUNKS} WHERE job_id = ? AND chunk_id = ? AND done_at IS NOT NULL`,
  markChunk: `INSERT INTO ${CHUNKS} (job_id, chunk_id, done_at, covers) VALUES (?, ?, UTC_TIMESTAMP(6), ?)
    ON DUPLICATE KEY UPDATE done_at = VALUES(done_at), covers = VALUES(covers)`,
  readCover: `SELECT covers FROM ${CHUNKS} WHERE job_id = ? AND chunk_id = ?`,
  forgetChunks: `DELETE FROM ${CHUNKS} WHERE job_id = ?`,
  emptyTable: (ref) => `DELETE FROM ${qt(ref)}`,
};

/**
 * applyAtOnce's guard, ? = job, lane, new sequence, expected sequence: the lane's checkpoint moves to the new
 * sequence when it holds the expected one; otherwise the statement sets NULL, which strict mode refuses (error 1048),
 * and the query holding it stops there. A lane without a row gets one, as writeCheckpoint would.
 */
export const GUARDED_CHECKPOINT_SQL = `INSERT INTO ${CHECKPOINTS} (job_id, lane, sequence, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
    ON DUPLICATE KEY UPDATE sequence = IF(sequence = ?, VALUES(sequence), NULL), updated_at = VALUES(updated_at)`;

/** Destinations set up before `covers` existed: run ADD_COVERS_SQL when this finds no row. */
export const HAS_COVERS_SQL = `SELECT 1 FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = 'tributary' AND TABLE_NAME = 'tributary_snapshot_chunks' AND COLUMN_NAME = 'covers'`;
export const ADD_COVERS_SQL = `ALTER TABLE ${CHUNKS} ADD COLUMN IF NOT EXISTS covers text CHARACTER SET ascii NULL`;

/**
 * MySQL and MariaDB compare column names without case, so a source table with
 * both "Id" and id cannot be created: fail naming the table and the columns
 * (once, fatal) instead of a retried `Duplicate column name`.
 */
function checkCaseDistinct(ref: TableRef, columns: ColumnType[]): void {
  const seen = new Map<string, string>();
  for (const c of columns) {
    const folded = c.name.toLowerCase();
    const other = seen.get(folded);
    if (other !== undefined) {
      throw new FatalError(`table ${ref.schema}.${ref.table}: columns "${other}" and "${c.name}" differ only in case, and MySQL/MariaDB column names are case-insensitive, so the destination cannot hold both; rename one at the source or leave the table out of the job`);
    }
    seen.set(folded, c.name);
  }
}

/** `wideKey`: a key column of a hashed key keeps its full type (mysqlHashedKey). */
function columnSql(col: ColumnType, caps: MysqlCaps, inKey: boolean, wideKey = false): string {
  const type = mysqlColumnType(col, caps, inKey && !wideKey);
  // Explicit NULL DEFAULT NULL: without it an old-style first timestamp column gets ON UPDATE CURRENT_TIMESTAMP.
  return `${qi(col.name)} ${type}${inKey ? ' NOT NULL' : ' NULL DEFAULT NULL'}`;
}

export function createDatabaseSql(db: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${qi(db)} CHARACTER SET utf8mb4`;
}

/** Only the key is NOT NULL (see pg-sql.ts for why). */
export function createTableSql(ref: TableRef, columns: ColumnType[], key: string[], caps: MysqlCaps): string {
  checkCaseDistinct(ref, columns);
  const keyCols = keyColumns(ref, columns, key);
  const hashed = mysqlHashedKey(keyCols, caps);
  if (hashed && !caps.longUnique) {
    throw new FatalError(`table ${ref.schema}.${ref.table}: its key (${key.join(', ')}) is longer than InnoDB's ${MYSQL_MAX_KEY_BYTES}-byte key limit, and this server has no UNIQUE ... USING HASH (MariaDB 10.4+) to hold it`);
  }
  const cols = columns.map((c) => columnSql(c, caps, key.includes(c.name), hashed));
  if (hashed) cols.push(...hashedKeySql(keyCols, caps));
  else if (key.length) cols.push(`PRIMARY KEY (${key.map(qi).join(', ')})`);
  return `CREATE TABLE IF NOT EXISTS ${qt(ref)} (${cols.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

function keyColumns(ref: TableRef, columns: ColumnType[], key: string[]): ColumnType[] {
  return key.map((k) => {
    const col = columns.find((c) => c.name === k);
    if (!col) throw new FatalError(`key column ${k} of ${ref.schema}.${ref.table} is not among its columns`);
    return col;
  });
}

/**
 * A key too long for InnoDB (mysqlHashedKey): uniqueness from MariaDB's hash
 * unique key (exact: full values are compared on a hash match), and lookups
 * by key (deletes) from a plain index over the leading key columns, the
 * first one that does not fit cut to a prefix within the 3072 bytes; the
 * optimizer does not read the hash key itself.
 */
function hashedKeySql(keyCols: ColumnType[], caps: MysqlCaps): string[] {
  const parts: string[] = [];
  let left = MYSQL_MAX_KEY_BYTES;
  for (const c of keyCols) {
    const type = mysqlColumnType(c, caps, false);
    const bytes = mysqlKeyPartBytes(type);
    if (bytes <= left) { parts.push(qi(c.name)); left -= bytes; continue; }
    const perChar = /text|char/i.test(type) && !/character set ascii/i.test(type) ? 4 : 1;
    const n = Math.floor(left / perChar);
    if (/text|char|blob|binary/i.test(type) && n >= 1) parts.push(`${qi(c.name)}(${n})`);
    break;
  }
  const out = [`UNIQUE KEY \`tributary_key\` (${keyCols.map((c) => qi(c.name)).join(', ')}) USING HASH`];
  if (parts.length) out.push(`KEY \`tributary_key_lookup\` (${parts.join(', ')})`);
  return out;
}

export function addColumnSql(ref: TableRef, col: ColumnType, caps: MysqlCaps): string {
  return `ALTER TABLE ${qt(ref)} ADD COLUMN ${columnSql(col, caps, false)}`;
}

/** An enum/set column redefined with its labels now (ALTER TYPE ... ADD VALUE on a PostgreSQL source). */
export function modifyColumnSql(ref: TableRef, col: ColumnType, caps: MysqlCaps, inKey: boolean): string {
  return `ALTER TABLE ${qt(ref)} MODIFY COLUMN ${columnSql(col, caps, inKey)}`;
}

export function dropColumnSql(ref: TableRef, name: string): string {
  return `ALTER TABLE ${qt(ref)} DROP COLUMN ${qi(name)}`;
}

function tuples(nCols: number, nRows: number): string {
  const one = `(${Array.from({ length: nCols }, () => '?').join(', ')})`;
  return Array.from({ length: nRows }, () => one).join(', ');
}

/**
 * `rows` as VALUES tuples with their values as literals, each value converted (toMysqlParam) and escaped
 * (`escape`: the connection's, mysql2's rules) straight into the text: no parameter array, no placeholder scan
 * per row (issue 12 profile: mysql2's format was a tenth of the apply's allocations).
 */
export function literalTuples(rows: Row[], sites: MysqlSite[], caps: MysqlCaps, escape: (value: unknown) => string): string {
  let out = '';
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    out += r === 0 ? '(' : ', (';
    for (let i = 0; i < sites.length; i++) {
      const s = sites[i]!;
      const v = toMysqlParam(row[s.column.name], s, caps, s.inKey);
      if (i > 0) out += ', ';
      out += typeof v === 'number' ? String(v) : v === null ? 'NULL' : escape(v);
    }
    out += ')';
  }
  return out;
}

/**
 * Multi-row INSERT; with `key`, ON DUPLICATE KEY UPDATE of the non-key columns present. `values`: the tuples with
 * their values (literalTuples) instead of `?` placeholders.
 */
export function insertSql(ref: TableRef, columns: ColumnType[], nRows: number, key?: string[], values?: string): string {
  let sql = `INSERT INTO ${qt(ref)} (${columns.map((c) => qi(c.name)).join(', ')}) VALUES ${values ?? tuples(columns.length, nRows)}`;
  if (key?.length) {
    const sets = columns.filter((c) => !key.includes(c.name)).map((c) => `${qi(c.name)} = VALUES(${qi(c.name)})`);
    // A row of key columns only: a no-op assignment keeps it an idempotent upsert (INSERT IGNORE would hide real errors).
    sql += ` ON DUPLICATE KEY UPDATE ${sets.length ? sets.join(', ') : `${qi(key[0]!)} = ${qi(key[0]!)}`}`;
  }
  return sql;
}

/** `hashed` (mysqlHashedKey): OR of ANDs, which the optimizer reads through the lookup index; a row IN list it does not. */
export function deleteKeysSql(ref: TableRef, keyCols: ColumnType[], nRows: number, hashed = false): string {
  if (hashed) {
    const one = `(${keyCols.map((c) => `${qi(c.name)} = ?`).join(' AND ')})`;
    return `DELETE FROM ${qt(ref)} WHERE ${Array.from({ length: nRows }, () => one).join(' OR ')}`;
  }
  if (keyCols.length === 1) {
    return `DELETE FROM ${qt(ref)} WHERE ${qi(keyCols[0]!.name)} IN (${Array.from({ length: nRows }, () => '?').join(', ')})`;
  }
  return `DELETE FROM ${qt(ref)} WHERE (${keyCols.map((c) => qi(c.name)).join(', ')}) IN (${tuples(keyCols.length, nRows)})`;
}

/**
 * Keyless tables: delete exactly one row equal (NULL-safe) to the image. A
 * FLOAT column is compared with the parameter rounded to FLOAT: the image
 * holds the source's shortest decimal text of the single-precision value
 * (0.1), which as a DOUBLE literal never equals the stored FLOAT
 * (0.100000001490116), so the row was never found and an update added one.
 */
export function deleteOneSql(ref: TableRef, columns: ColumnType[]): string {
  const conds = columns.map((c) => `${qi(c.name)} <=> ${c.kind === 'float' && pgColumnType(c) === 'real' ? 'CAST(? AS FLOAT)' : '?'}`);
  return `DELETE FROM ${qt(ref)} WHERE ${conds.join(' AND ') || '1'} LIMIT 1`;
}

/**
 * MariaDB's invalid-ENUM value (index 0) cannot be written under the
 * applier's strict sql_mode. The row is written with NULL there, then this
 * UPDATE sets exactly those columns to 0 (index 0) with strict mode off for
 * this one statement, so no other value is ever stored non-strictly. `match`
 * finds the row: the key columns (`= ?`), or for a keyless table every column
 * (`<=> ?`, the invalid-ENUM columns `IS NULL`) and LIMIT 1, any one of
 * identical rows being as good as another.
 */
export function setInvalidEnumSql(ref: TableRef, enumCols: string[], match: ColumnType[], keyed: boolean): string {
  const conds = match.map((c) => (enumCols.includes(c.name) ? `${qi(c.name)} IS NULL` : `${qi(c.name)} ${keyed ? '=' : '<=>'} ?`));
  return relaxedSql(`UPDATE ${qt(ref)} SET ${enumCols.map((n) => `${qi(n)} = 0`).join(', ')} WHERE ${conds.join(' AND ') || '1'}${keyed ? '' : ' LIMIT 1'}`);
}

/** One statement with strict mode off (MariaDB's SET STATEMENT); only for invalid-ENUM values, see setInvalidEnumSql. */
export function relaxedSql(sql: string): string {
  return `SET STATEMENT sql_mode = 'NO_ENGINE_SUBSTITUTION' FOR ${sql}`;
}

/** A value's place, and whether it is held at a key column's bounded width (mysqlColumnType's `inKey`). */
export type MysqlSite = ValueSite & { inKey: boolean };

/** Where each value of a table's rows goes; `boundedKey`: the key columns have their key widths (not so under a hashed key, see mysqlHashedKey). */
export function mysqlSites(ref: TableRef, columns: ColumnType[], key: string[], boundedKey: boolean): MysqlSite[] {
  const table = `${ref.schema}.${ref.table}`;
  return columns.map((column) => ({ table, column, inKey: boundedKey && key.includes(column.name) }));
}

/** Bind parameters of `rows` for insertSql, deleteKeysSql or deleteOneSql: row after row, in the order of `sites`. */
export function mysqlParams(rows: Row[], sites: MysqlSite[], caps: MysqlCaps): unknown[] {
  const out: unknown[] = [];
  for (const row of rows) for (const s of sites) out.push(toMysqlParam(row[s.column.name], s, caps, s.inKey));
  return out;
}

/** Rows cut into statements of at most `maxRows` rows and about MAX_STATEMENT_BYTES of SQL. */
export function statementRows(rows: Row[], maxRows: number): Row[][] {
  const out: Row[][] = [];
  let cur: Row[] = [];
  let bytes = 0;
  for (const r of rows) {
    const size = rowBytes(r);
    if (cur.length && (cur.length >= maxRows || bytes + size > MAX_STATEMENT_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Escaped size estimate: binary (base64) becomes hex, about 1.5x; text may double with escapes. */
function rowBytes(r: Row): number {
  let n = 8;
  for (const v of Object.values(r)) n += typeof v === 'string' ? v.length * 2 + 4 : 8;
  return n;
}
