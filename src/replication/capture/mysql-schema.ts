/**
 * Table metadata from information_schema, shared by the binlog capture and
 * the snapshot reader: column types (mysql-values.ts), the key (primary key,
 * else the first unique key over NOT NULL columns) and the row estimate.
 */
import type mysql from 'mysql2/promise';
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

/** `name` quoted as a MariaDB identifier. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

export function quoteTable(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
