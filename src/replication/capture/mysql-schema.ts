/**
 * Table metadata from information_schema, shared by the binlog capture and
 * the snapshot reader: column types (mysql-values.ts), the key (primary key,
 * else the first unique key over NOT NULL columns) and the row estimate.
 */
import type mysql from 'mysql2/promise';
import { randomBytes } from 'node:crypto';
import type { ColumnType } from '../change-event.ts';
import { matchesFilter, SYSTEM_SCHEMAS, type TableFilter } from '../connection-config.ts';
import type { TableInfo } from '../table-info.ts';
import { columnTypeFromSchema, type InformationSchemaColumn } from './mysql-values.ts';

type Queryable = Pick<mysql.Connection, 'query'>;

const COLUMNS_SQL = `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH,
  NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION
  FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`;

const KEYS_SQL = `SELECT INDEX_NAME, COLUMN_NAME, NULLABLE FROM information_schema.STATISTICS
  WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
  ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`;

// MariaDB stores JSON as LONGTEXT guarded by an automatic json_valid() check.
const JSON_CHECKS_SQL = `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
  WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`;

const TABLES_SQL = `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES
  WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME`;

/** Columns and key of one table; undefined when it does not exist (or is invisible to the user). */
export async function loadTableInfo(db: Queryable, schema: string, table: string, estimatedRows = 0): Promise<TableInfo | undefined> {
  const [cols] = await db.query(COLUMNS_SQL, [schema, table]);
  const colRows = cols as InformationSchemaColumn[];
  if (colRows.length === 0) return undefined;
  const jsonCols = await jsonColumns(db, schema, table);
  const columns: ColumnType[] = colRows.map((c) => columnTypeFromSchema(c, jsonCols.has(c.COLUMN_NAME)));
  const exact = await exactLabels(db, schema, table, columns);
  for (const c of columns) { const labels = exact.get(c.name); if (labels) c.values = labels; }
  const [keyRows] = await db.query(KEYS_SQL, [schema, table]);
  return { schema, table, columns, key: pickKey(keyRows as KeyRow[]), estimatedRows };
}

interface KeyRow { INDEX_NAME: string; COLUMN_NAME: string; NULLABLE: string }

function pickKey(rows: KeyRow[]): string[] {
  const byIndex = new Map<string, KeyRow[]>();
  for (const r of rows) {
    const list = byIndex.get(r.INDEX_NAME) ?? [];
    list.push(r);
    byIndex.set(r.INDEX_NAME, list);
  }
  for (const [name, parts] of byIndex) {
    // A unique key over a nullable column does not identify a row (NULLs repeat).
    if (name === 'PRIMARY' || parts.every((p) => p.NULLABLE !== 'YES')) return parts.map((p) => p.COLUMN_NAME);
  }
  return [];
}

async function jsonColumns(db: Queryable, schema: string, table: string): Promise<Set<string>> {
  const out = new Set<string>();
  try {
    const [rows] = await db.query(JSON_CHECKS_SQL, [schema, table]);
    for (const r of rows as { CHECK_CLAUSE: string }[]) {
      const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(r.CHECK_CLAUSE.trim());
      if (m) out.add(m[1]!.replace(/``/g, '`'));
    }
  } catch {
    // MySQL's CHECK_CONSTRAINTS has no TABLE_NAME; there JSON is a real type (DATA_TYPE 'json').
  }
  return out;
}

/** Base tables matching the filter, system schemas excluded, with columns, key and TABLE_ROWS estimate. */
export async function listTableInfos(db: Queryable, filter: TableFilter): Promise<TableInfo[]> {
  const [rows] = await db.query(TABLES_SQL);
  const out: TableInfo[] = [];
  for (const r of rows as { TABLE_SCHEMA: string; TABLE_NAME: string; TABLE_ROWS: number | string | null }[]) {
    if (SYSTEM_SCHEMAS.has(r.TABLE_SCHEMA.toLowerCase())) continue;
    if (!matchesFilter(filter, r.TABLE_SCHEMA, r.TABLE_NAME)) continue;
    const info = await loadTableInfo(db, r.TABLE_SCHEMA, r.TABLE_NAME, Number(r.TABLE_ROWS ?? 0));
    if (info) out.push(info);
  }
  return out;
}

/**
 * MariaDB's metadata (information_schema, SHOW CREATE TABLE) is utf8mb3, so
 * an ENUM/SET label with a 4-byte character (an emoji) shows with '?' in
 * its place. Where a label has a '?', the exact labels are read through the
 * data path instead: an empty TEMPORARY copy of the columns (CREATE ... SELECT
 * keeps their types), one row per label index, read back as text. In row
 * binlog format temporary tables are not logged. Without the CREATE TEMPORARY
 * TABLES privilege the labels stay as the metadata shows them (a value with
 * the lost character then fails the job at the destination, naming it).
 * Returns the exact labels of the columns it could read, by column name.
 */
export async function exactLabels(db: Queryable, schema: string, table: string, columns: Pick<ColumnType, 'name' | 'kind' | 'values'>[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const lossy = columns.filter((c) => (c.kind === 'enum' || c.kind === 'set') && c.values?.some((l) => l.includes('?')));
  if (lossy.length === 0) return out;
  const tmp = quoteTable(schema, `tributary_labels_${randomBytes(6).toString('hex')}`);
  const rows = Math.max(...lossy.map((c) => c.values!.length));
  try {
    await db.query(`CREATE TEMPORARY TABLE ${tmp} AS SELECT CAST(0 AS UNSIGNED) AS n, ${lossy.map((c, i) => `${quoteIdent(c.name)} AS c${i}`).join(', ')}
      FROM ${quoteTable(schema, table)} LIMIT 0`);
    try {
      // An ENUM index counts from 1; a SET member i is bit i. Rows past a column's labels repeat its first
      // (read back and dropped): the copy keeps NOT NULL.
      const index = (c: (typeof lossy)[number], i: number) => (i >= c.values!.length ? '1' : c.kind === 'enum' ? String(i + 1) : (1n << BigInt(i)).toString());
      const values = Array.from({ length: rows }, (_, i) => `(${i}, ${lossy.map((c) => index(c, i)).join(', ')})`);
      await db.query(`INSERT INTO ${tmp} VALUES ${values.join(', ')}`);
      const [read] = await db.query(`SELECT ${lossy.map((_, i) => `c${i}`).join(', ')} FROM ${tmp} ORDER BY n`);
      const got = read as Record<string, string | null>[];
      lossy.forEach((c, i) => out.set(c.name, got.slice(0, c.values!.length).map((r) => String(r[`c${i}`] ?? ''))));
    } finally {
      await db.query(`DROP TEMPORARY TABLE IF EXISTS ${tmp}`);
    }
  } catch {
    // No CREATE TEMPORARY TABLES privilege (or no such table any more): keep the metadata's labels.
  }
  return out;
}

/** `name` quoted as a MariaDB identifier. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

export function quoteTable(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
