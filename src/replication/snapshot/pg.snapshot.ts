/**
 * Initial copy of PostgreSQL tables, chunked by key.
 *
 * Each chunk is read inside `REPEATABLE READ READ ONLY`; when the capture's
 * exported snapshot is given and still importable, the chunk sees exactly the
 * data as of the slot's consistent point, so nothing is read twice or missed.
 * When the import fails (the exporting session moved on), we fall back to a
 * fresh snapshot and log it: the stream replays everything from the slot's
 * start with full row images, so the destination still converges.
 *
 * Values come back as the server's text (every type parser replaced) and go
 * through pgTextToValue, the same conversion the capture uses.
 */
import pg from 'pg';
import type { Row, SourcePosition } from '../change-event.ts';
import { matchesFilter, type DbConnectionConfig, type TableFilter } from '../connection-config.ts';
import { classify, FatalError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { ChunkBounds, TableInfo } from '../table-info.ts';
import { pgSnapshotCover } from './snapshot-cover.ts';
import type { ReadChunkOptions, SnapshotReader } from './snapshot-reader.ts';
import { loadKey, loadTableColumns } from '../capture/pg-catalog.ts';
import { describePgTarget, pgClientConfig, quoteIdent, quoteLiteral, quoteTable, RAW_TEXT_TYPES } from '../capture/pg-connection.ts';
import { pgTextToValue, valueToPgParam } from '../capture/pg-values.ts';

export interface PgSnapshotReaderOptions {
  connection: DbConnectionConfig;
  logger: Logger;
  /** Connections kept for parallel chunk reads. Default 4. */
  poolSize?: number;
}

/** Exported snapshot ids look like "00000003-00000002-1". */
const SNAPSHOT_NAME_RE = /^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$/;
const CURSOR = 'tributary_chunk';

export class PgSnapshotReader implements SnapshotReader {
  private readonly pool: pg.Pool;
  private readonly logger: Logger;
  private closing?: Promise<void>;

  constructor(opts: PgSnapshotReaderOptions) {
    if (opts.connection.kind !== 'postgres') throw new FatalError('PgSnapshotReader needs a postgres connection');
    this.logger = opts.logger.child({ component: 'pg-snapshot', target: describePgTarget(opts.connection) });
    this.pool = new pg.Pool({ ...pgClientConfig(opts.connection), max: opts.poolSize ?? 4, idleTimeoutMillis: 30_000 });
    // An idle pooled connection that dies must not crash the process; the next query reconnects.
    this.pool.on('error', (err) => this.logger.warn({ err: err.message }, 'idle snapshot connection lost'));
  }

  async listTables(filter: TableFilter): Promise<TableInfo[]> {
    try {
      const res = await this.pool.query<{ oid: string; schema: string; table: string; reltuples: number }>(
        `SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS table, c.reltuples::float8 AS reltuples
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
            AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
            AND has_table_privilege(c.oid, 'SELECT')
          ORDER BY 2, 3`,
      );
      const out: TableInfo[] = [];
      for (const r of res.rows) {
        if (!matchesFilter(filter, r.schema, r.table)) continue;
        const oid = Number(r.oid);
        const [columns, key] = await Promise.all([loadTableColumns(this.pool, oid), loadKey(this.pool, oid)]);
        // reltuples is -1 (PG14+) or 0 before the first ANALYZE: count instead.
        const estimatedRows = r.reltuples > 0 ? Math.round(r.reltuples) : await this.count(r.schema, r.table);
        out.push({ schema: r.schema, table: r.table, columns, key, estimatedRows });
      }
      return out;
    } catch (err) {
      throw classify(err);
    }
  }

  async planChunks(table: TableInfo, chunkRows: number): Promise<ChunkBounds[]> {
    if (table.key.length === 0 || chunkRows <= 0) return [{ index: 0 }];
    const keyCols = this.keyColumns(table);
    const keyList = keyCols.map((c) => quoteIdent(c.name)).join(', ');
    try {
      // One pass over the key index: every chunkRows-th key closes a chunk.
      const res = await this.pool.query<unknown[]>({
        text: `SELECT ${keyList} FROM (SELECT ${keyList}, row_number() OVER (ORDER BY ${keyList}) AS rn
                 FROM ${quoteTable(table.schema, table.table)}) s WHERE rn % $1 = 0 ORDER BY ${keyList}`,
        values: [chunkRows],
        rowMode: 'array',
        types: RAW_TEXT_TYPES,
      });
      const bounds: Row[] = res.rows.map((r) => {
        const row: Row = {};
        keyCols.forEach((c, i) => { row[c.name] = pgTextToValue(r[i] as string | null, c); });
        return row;
      });
      const chunks: ChunkBounds[] = [];
      for (let i = 0; i <= bounds.length; i++) {
        const chunk: ChunkBounds = { index: i };
        if (i > 0) chunk.after = bounds[i - 1];
        if (i < bounds.length) chunk.upTo = bounds[i];
        chunks.push(chunk);
      }
      return chunks;
    } catch (err) {
      throw classify(err);
    }
  }

  async *readChunk(table: TableInfo, chunk: ChunkBounds, batchRows: number, opts: ReadChunkOptions = {}): AsyncIterable<Row[]> {
    const client = await this.pool.connect().catch((err: unknown) => { throw classify(err); });
    let done = false;
    try {
      await this.begin(client, opts.snapshotName);
      // A keyless table's copy cannot be upserted over: say which transactions it holds (this transaction's
      // snapshot; exact whether the export was imported or a fresh snapshot had to be taken).
      if ((table.key.length === 0 || opts.coverKeyed) && opts.onCover) {
        const snap = await client.query<{ s: string }>('SELECT txid_current_snapshot()::text AS s');
        opts.onCover(pgSnapshotCover(snap.rows[0]!.s));
      }
      const { sql, values } = this.chunkQuery(table, chunk);
      await client.query({ text: `DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`, values });
      const size = Math.max(1, Math.floor(batchRows));
      for (;;) {
        const res = await client.query<unknown[]>({ text: `FETCH ${size} FROM ${CURSOR}`, rowMode: 'array', types: RAW_TEXT_TYPES });
        if (res.rows.length > 0) yield res.rows.map((r) => this.toRow(table, r));
        if (res.rows.length < size) break;
      }
      await client.query('COMMIT');
      done = true;
    } catch (err) {
      throw classify(err);
    } finally {
      // Left early (consumer stopped, or an error): end the transaction before the connection goes back.
      if (!done) await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  async position(): Promise<SourcePosition> {
    try {
      const res = await this.pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return { kind: 'postgres', lsn: res.rows[0]!.lsn };
    } catch (err) {
      throw classify(err);
    }
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end().catch((err: unknown) => this.logger.warn({ err: String(err) }, 'snapshot pool close failed'));
    return this.closing;
  }

  /** Open the chunk's transaction on the exported snapshot, or on a fresh one when it cannot be imported. */
  private async begin(client: pg.PoolClient, snapshotName?: string): Promise<void> {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (!snapshotName) return;
    if (!SNAPSHOT_NAME_RE.test(snapshotName)) throw new FatalError(`invalid exported snapshot name "${snapshotName}"`);
    try {
      await client.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`);
    } catch (err) {
      this.logger.warn(
        { snapshotName, err: (err as Error).message },
        'exported snapshot no longer importable; reading a fresh snapshot (the stream replays from the slot start)',
      );
      await client.query('ROLLBACK');
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    }
  }

  private chunkQuery(table: TableInfo, chunk: ChunkBounds): { sql: string; values: unknown[] } {
    const cols = table.columns.map((c) => quoteIdent(c.name)).join(', ');
    let sql = `SELECT ${cols} FROM ${quoteTable(table.schema, table.table)}`;
    const values: unknown[] = [];
    if (table.key.length === 0) return { sql, values };
    const keyCols = this.keyColumns(table);
    const keyTuple = `(${keyCols.map((c) => quoteIdent(c.name)).join(', ')})`;
    // Row comparison keeps composite keys in the index's lexicographic order.
    const boundTuple = (row: Row): string => `(${keyCols.map((c) => {
      values.push(valueToPgParam(row[c.name], c));
      return `$${values.length}::${c.sourceType}`;
    }).join(', ')})`;
    const where: string[] = [];
    if (chunk.after) where.push(`${keyTuple} > ${boundTuple(chunk.after)}`);
    if (chunk.upTo) where.push(`${keyTuple} <= ${boundTuple(chunk.upTo)}`);
    if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ` ORDER BY ${keyCols.map((c) => quoteIdent(c.name)).join(', ')}`;
    return { sql, values };
  }

  private keyColumns(table: TableInfo) {
    return table.key.map((k) => {
      const col = table.columns.find((c) => c.name === k);
      if (!col) throw new FatalError(`key column ${k} not found in ${table.schema}.${table.table}`);
      return col;
    });
  }

  private toRow(table: TableInfo, values: unknown[]): Row {
    const row: Row = {};
    table.columns.forEach((c, i) => { row[c.name] = pgTextToValue(values[i] as string | null, c); });
    return row;
  }

  private async count(schema: string, table: string): Promise<number> {
    const res = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteTable(schema, table)}`);
    return Number(res.rows[0]!.n);
  }
}
