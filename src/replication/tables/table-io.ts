/**
 * Whole-table access for pipelines and the data API: describe, count, read
 * in key order, and load rows all-or-nothing.
 *
 * `loadTable` is atomic: on PostgreSQL the CREATE and every INSERT run in one
 * transaction; on MariaDB (where DDL commits by itself) the table is created
 * first, the rows go in one transaction, and a table this call created is
 * dropped again if the load fails. Either way a failed load leaves nothing
 * half-loaded behind.
 *
 * Partitions (FATE's `partition`, "the number of partitions to save data"):
 * a table this module creates with `partitions` > 1 is hash-partitioned on
 * its key by the database itself: PostgreSQL `PARTITION BY HASH` with one
 * `<table>_p<i>` partition per remainder, MariaDB `PARTITION BY KEY ...
 * PARTITIONS n`. `tablePartitions` reads the count back from the catalog.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type mysql from 'mysql2/promise';
import type { Row } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import type { TableInfo } from '../table-info.ts';
import { createSnapshotReader } from '../factory.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { FatalError, classify } from '../errors.ts';
import { openMysql } from '../capture/mysql-connection.ts';
import { pgClientConfig } from '../capture/pg-connection.ts';
import * as pgSql from '../apply/pg-sql.ts';
import * as myDdl from '../apply/mysql-sql.ts';
import { MARIADB_CAPS } from '../apply/type-map.ts';
import { chunkRows } from '../apply/batch-plan.ts';

/** Where a table lives on its connection. */
export interface TableAddress {
  schema: string;
  table: string;
}

export async function describeTable(conn: DbConnectionConfig, at: TableAddress, logger: Logger = silentLogger): Promise<TableInfo | undefined> {
  const reader = createSnapshotReader(conn, logger);
  try {
    const tables = await reader.listTables({ schemas: [{ schema: at.schema, tables: [at.table] }] });
    return tables.find((t) => t.schema === at.schema && t.table === at.table);
  } finally {
    await reader.close().catch(() => undefined);
  }
}

/** Exact row count. */
export async function countRows(conn: DbConnectionConfig, at: TableAddress): Promise<number> {
  return queryCount(conn, [`SELECT count(*) AS n FROM ${pgSql.qt(at)}`], [`SELECT count(*) AS n FROM ${myDdl.qt(at)}`]);
}

/** The count `n` that one query returns, on a connection of its own: the PostgreSQL or the MariaDB form, by the connection. */
async function queryCount(conn: DbConnectionConfig, onPg: [string, unknown[]?], onMysql: [string, unknown[]?]): Promise<number> {
  if (conn.kind === 'postgres') {
    const c = new pg.Client(pgClientConfig(conn));
    await c.connect();
    try {
      const r = await c.query<{ n: string }>(onPg[0], onPg[1]);
      return Number(r.rows[0]?.n ?? 0);
    } finally { await c.end().catch(() => undefined); }
  }
  const c = await openMysql(conn);
  try {
    const [rows] = await c.query(onMysql[0], onMysql[1]);
    return Number((rows as { n: number | string }[])[0]?.n ?? 0);
  } finally { await c.end().catch(() => undefined); }
}

/** Every row, in key order, in batches of up to `batchRows`. */
export async function* readTable(conn: DbConnectionConfig, info: TableInfo, batchRows: number, logger: Logger = silentLogger, signal?: AbortSignal): AsyncGenerator<Row[]> {
  const reader = createSnapshotReader(conn, logger);
  try {
    for await (const batch of reader.readChunk(info, { index: 0 }, batchRows)) {
      if (signal?.aborted) return;
      yield batch;
    }
  } finally {
    await reader.close().catch(() => undefined);
  }
}

export interface LoadOptions {
  /** Drop an existing table of that name first (FATE's `drop`). Default false: append (upsert on the key). */
  replace?: boolean;
  /** Told after each batch with the rows loaded so far. */
  onProgress?(rows: number): void | Promise<void>;
  signal?: AbortSignal;
  /** Rows per INSERT statement. Default 1000. */
  rowsPerStatement?: number;
  /** Hash partitions on the key when this call creates the table (1..MAX_PARTITIONS). Default 1: not partitioned. */
  partitions?: number;
}

export const MAX_PARTITIONS = 1024;

function partitionsOf(opts: LoadOptions, info: TableInfo): number {
  const n = opts.partitions ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS) throw new FatalError(`partitions must be an integer between 1 and ${MAX_PARTITIONS}, got ${n}`);
  if (n > 1 && !info.key.length) throw new FatalError(`${info.schema}.${info.table} has no key to partition on`);
  return n;
}

/** `<table>_p<i>`, kept within PostgreSQL's 63-byte names (a long table name is cut and told apart by a hash). */
export function pgPartitionName(table: string, i: number): string {
  const suffix = `_p${i}`;
  if (Buffer.byteLength(table) + suffix.length <= 63) return `${table}${suffix}`;
  const hash = createHash('sha1').update(table).digest('hex').slice(0, 8);
  let head = table;
  while (Buffer.byteLength(head) + 1 + hash.length + suffix.length > 63) head = head.slice(0, -1);
  return `${head}_${hash}${suffix}`;
}

function pgCreateStatements(info: TableInfo, partitions: number): string[] {
  const ref = { schema: info.schema, table: info.table };
  const create = pgSql.createTableSql(ref, info.columns, info.key);
  if (partitions <= 1) return [create];
  return [
    `${create} PARTITION BY HASH (${info.key.map(pgSql.qi).join(', ')})`,
    ...Array.from({ length: partitions }, (_, i) =>
      `CREATE TABLE ${pgSql.qt({ schema: info.schema, table: pgPartitionName(info.table, i) })} PARTITION OF ${pgSql.qt(ref)} FOR VALUES WITH (MODULUS ${partitions}, REMAINDER ${i})`),
  ];
}

/** MariaDB's partitioning fields hold at most 3072 bytes: a text key of a partitioned table is varchar(767) utf8mb4, not 768. */
const MYSQL_PARTITION_KEY_TEXT_CHARS = 767;

function mysqlCreateStatement(info: TableInfo, partitions: number): string {
  const ref = { schema: info.schema, table: info.table };
  if (partitions <= 1) return myDdl.createTableSql(ref, info.columns, info.key, MARIADB_CAPS);
  const columns = info.columns.map((c) => (info.key.includes(c.name) && c.kind === 'text' && !c.length ? { ...c, length: MYSQL_PARTITION_KEY_TEXT_CHARS } : c));
  return `${myDdl.createTableSql(ref, columns, info.key, MARIADB_CAPS)} PARTITION BY KEY (${info.key.map(myDdl.qi).join(', ')}) PARTITIONS ${partitions}`;
}

/** How many partitions the table is stored in (1 when it is not partitioned). */
export async function tablePartitions(conn: DbConnectionConfig, at: TableAddress): Promise<number> {
  return Math.max(1, await queryCount(conn,
    [`SELECT count(i.inhrelid) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
        LEFT JOIN pg_inherits i ON i.inhparent = c.oid WHERE s.nspname = $1 AND c.relname = $2 AND c.relkind = 'p'`, [at.schema, at.table]],
    ['SELECT count(*) AS n FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL', [at.schema, at.table]]));
}

/** Create the table if missing (or replace it) and load every row, all or nothing. Returns the rows loaded. */
export async function loadTable(conn: DbConnectionConfig, info: TableInfo, rows: AsyncIterable<Row[]> | Iterable<Row[]>, opts: LoadOptions = {}): Promise<number> {
  return conn.kind === 'postgres' ? loadPg(conn, info, rows, opts) : loadMysql(conn, info, rows, opts);
}

/** Every batch through `write` (its INSERT statements, in the caller's transaction), progress told after each; a canceled load stops at the next batch. */
async function eachBatch(batches: AsyncIterable<Row[]> | Iterable<Row[]>, opts: LoadOptions, write: (batch: Row[]) => Promise<void>): Promise<number> {
  let n = 0;
  for await (const batch of batches) {
    if (opts.signal?.aborted) throw new FatalError('load canceled');
    await write(batch);
    n += batch.length;
    await opts.onProgress?.(n);
  }
  return n;
}

async function loadPg(conn: DbConnectionConfig, info: TableInfo, batches: AsyncIterable<Row[]> | Iterable<Row[]>, opts: LoadOptions): Promise<number> {
  const c = new pg.Client(pgClientConfig(conn));
  try { await c.connect(); } catch (err) { throw classify(err); }
  c.on('error', () => undefined);
  const ref = { schema: info.schema, table: info.table };
  const sites = pgSql.pgSites(ref, info.columns);
  const per = Math.max(1, opts.rowsPerStatement ?? 1000);
  const key = info.key.length ? info.key : undefined;
  try {
    const partitions = partitionsOf(opts, info);
    await c.query('BEGIN');
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${pgSql.qi(info.schema)}`);
    if (opts.replace) await c.query(`DROP TABLE IF EXISTS ${pgSql.qt(ref)}`);
    const exists = await c.query('SELECT to_regclass($1) AS t', [pgSql.qt(ref)]);
    if (!exists.rows[0]?.t) for (const sql of pgCreateStatements(info, partitions)) await c.query(sql);
    const n = await eachBatch(batches, opts, async (batch) => {
      for (const part of chunkRows(batch, info.columns.length, per, pgSql.PG_MAX_PARAMS)) {
        await c.query(pgSql.insertSql(ref, info.columns, part.length, key), pgSql.pgParams(part, sites));
      }
    });
    await c.query('COMMIT');
    return n;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function loadMysql(conn: DbConnectionConfig, info: TableInfo, batches: AsyncIterable<Row[]> | Iterable<Row[]>, opts: LoadOptions): Promise<number> {
  const c: mysql.Connection = await openMysql(conn);
  const ref = { schema: info.schema, table: info.table };
  // Key values are checked against the bounded key widths (mysqlColumnType's inKey), whatever key the table has.
  const sites = myDdl.mysqlSites(ref, info.columns, info.key, true);
  const per = Math.max(1, opts.rowsPerStatement ?? 1000);
  const key = info.key.length ? info.key : undefined;
  let created = false;
  try {
    const partitions = partitionsOf(opts, info);
    await c.query(myDdl.createDatabaseSql(info.schema));
    if (opts.replace) await c.query(`DROP TABLE IF EXISTS ${myDdl.qt(ref)}`);
    const [exists] = await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?', [info.schema, info.table]);
    if (!(exists as unknown[]).length) {
      await c.query(mysqlCreateStatement(info, partitions));
      created = true;
    }
    await c.query('START TRANSACTION');
    const n = await eachBatch(batches, opts, async (batch) => {
      for (const part of myDdl.statementRows(batch, per)) {
        await c.query(myDdl.insertSql(ref, info.columns, part.length, key), myDdl.mysqlParams(part, sites, MARIADB_CAPS));
      }
    });
    await c.query('COMMIT');
    return n;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    if (created) await c.query(`DROP TABLE IF EXISTS ${myDdl.qt(ref)}`).catch(() => undefined);
    throw err;
  } finally {
    await c.end().catch(() => undefined);
  }
}
