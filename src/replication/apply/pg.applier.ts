/**
 * Applier for a PostgreSQL destination (`pg`). Every write and the
 * checkpoint that covers it commit in one transaction; PostgreSQL DDL is
 * transactional too, so a batch with DDL is still all-or-nothing.
 *
 * Bookkeeping lives in the destination database, schema `tributary`:
 * `tributary_checkpoints(job_id, lane, sequence, updated_at)` and
 * `tributary_snapshot_chunks(job_id, chunk_id, done_at)`.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { ChangeEvent, ColumnType, Row } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import { FatalError, ReplicationError, UnsupportedDdlError } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { compareSequences } from '../sequence.ts';
import type { TableInfo } from '../table-info.ts';
import { toApplyError } from './apply-errors.ts';
import { LaneCommits, SnapshotCovers, unseenTables, unsee, type Applier, type ApplierOptions } from './applier.ts';
import { chunkRows, planBatch, type Step, type TableRef } from './batch-plan.ts';
import { classifyDdl } from './ddl.ts';
import { destTable } from './dest-names.ts';
import {
  CHECKPOINTS, CHUNKS, DDL_LOCK_SQL, META_DDL, PG_MAX_PARAMS, addColumnSql, createTableSql, deleteKeysSql,
  deleteOneSql, dropColumnSql, retypeColumnSql, insertSql, labelCheckSql, qi, qt,
} from './pg-sql.ts';
import { assertKeyable, toPgParam, type ValueSite } from './type-map.ts';
import { copyRows, copyText } from './pg-copy.ts';

export interface PgApplierOptions extends ApplierOptions {
  /** Connections in the pool; one per concurrently applying lane. Default 4. */
  poolSize?: number;
  /** Rows per INSERT/DELETE statement (also bounded by 65535 parameters). Default 1000. */
  rowsPerStatement?: number;
  /** Default: silent. */
  logger?: Logger;
}

type Client = pg.PoolClient;

/** Upsert steps with at least this many rows are staged through COPY. */
const STAGE_MIN_ROWS = 200;

export class PgApplier implements Applier {
  /** Table creations of unseen tables, in order: every batch waits for those started before it. */
  private tableCreation: Promise<void> = Promise.resolve();
  /** Tables whose destination this instance made sure of (see unseenTables). */
  private readonly seenTables = new Set<string>();
  private readonly pool: pg.Pool;
  private readonly rowsPerStatement: number;
  private readonly logger: Logger;
  private meta?: Promise<void>;
  private closing?: Promise<void>;
  /** Keyless-table snapshot rows held until the chunk's final call (see loadChunk). */
  private readonly keylessChunks = new Map<string, Row[]>();
  /** Per destination table: has a unique index on exactly the key columns (COPY straight in is safe). */
  private readonly uniqueKeyed = new Map<string, boolean>();
  /** What each lane committed through this instance (a destination that forgets commits is caught). */
  private readonly laneCommits = new LaneCommits();
  /** Keyless tables: the stream changes their snapshot copy holds (skipped). */
  private readonly covers: SnapshotCovers;
  /**
   * Staging tables each pooled session has (temporary, ON COMMIT DELETE ROWS): name -> used in the open
   * transaction. Created once per session and table shape instead of once per batch (issue 12: the
   * CREATE/DROP pair per batch cost the destination catalog work and two round trips).
   */
  private readonly stages = new WeakMap<Client, Map<string, boolean>>();

  constructor(conn: DbConnectionConfig, private readonly opts: PgApplierOptions) {
    if (conn.kind !== 'postgres') throw new FatalError(`PgApplier needs a postgres connection, got ${conn.kind}`);
    if (!opts.jobId) throw new FatalError('PgApplier needs a jobId');
    this.rowsPerStatement = opts.rowsPerStatement ?? 1000;
    if (!(this.rowsPerStatement >= 1)) throw new FatalError('rowsPerStatement must be >= 1');
    this.logger = (opts.logger ?? silentLogger).child({ component: 'pg-applier' });
    this.covers = new SnapshotCovers(async (chunkId) =>
      (await this.query<{ covers: string | null }>(`SELECT covers FROM ${CHUNKS} WHERE job_id = $1 AND chunk_id = $2`, [this.opts.jobId, chunkId])).rows[0]?.covers ?? null,
    this.logger);
    this.pool = new pg.Pool({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password,
      database: conn.database ?? 'postgres',
      max: opts.poolSize ?? 4,
      application_name: 'tributary-apply',
      ssl: conn.tls?.enabled ? { rejectUnauthorized: conn.tls.rejectUnauthorized ?? true, ca: conn.tls.ca } : undefined,
    });
    // An idle client that dies must not crash the process; the next checkout reconnects.
    this.pool.on('error', (err) => this.logger.warn({ err: err.message }, 'idle destination connection failed'));
  }

  async ensureTable(table: TableInfo): Promise<void> {
    await this.ensureMeta();
    await this.tx(async (c) => this.ensureTableIn(c, table, table.columns, table.key));
  }

  /**
   * Keyed tables: each call upserts its rows in its own transaction (a re-run
   * rewrites the same rows), and the final call of a chunk also marks it done.
   * Keyless tables have a single chunk (snapshot-reader.ts) and nothing to
   * upsert on, so their rows are held until the final call, which replaces
   * the whole table and marks the chunk in one transaction: a crash before
   * that leaves nothing behind, a crash after leaves the chunk done.
   */
  async loadChunk(table: TableInfo, rows: Row[], chunkId: string, final: boolean, cover?: string): Promise<void> {
    if (table.key.length === 0) {
      const held = this.keylessChunks.get(chunkId) ?? [];
      for (const r of rows) held.push(r);
      if (!final) { this.keylessChunks.set(chunkId, held); return; }
      this.keylessChunks.delete(chunkId);
      rows = held;
    }
    await this.ensureMeta();
    const ref = { schema: table.schema, table: table.table };
    const dest = destTable(ref, this.opts.rename);
    // Values are converted (and checked) before the transaction: COPY never starts on a bad value.
    const text = rows.length ? copyText(rows, siteList(ref, table.columns)) : [];
    await this.tx(async (c) => {
      const done = await c.query(`SELECT 1 FROM ${CHUNKS} WHERE job_id = $1 AND chunk_id = $2 AND done_at IS NOT NULL`, [this.opts.jobId, chunkId]);
      if (done.rowCount) return;
      if (table.key.length === 0) {
        await c.query(`TRUNCATE ${qt(dest)}`);
        await copyRows(c, dest, table.columns, text);
      } else if (text.length) {
        await this.copyUpsert(c, dest, table.columns, table.key, text);
      }
      if (final) {
        await c.query(
          `INSERT INTO ${CHUNKS} (job_id, chunk_id, done_at, covers) VALUES ($1, $2, now(), $3)
           ON CONFLICT (job_id, chunk_id) DO UPDATE SET done_at = EXCLUDED.done_at, covers = EXCLUDED.covers`,
          [this.opts.jobId, chunkId, table.key.length === 0 ? cover ?? null : null],
        );
      }
    });
  }

  /**
   * Snapshot rows into a keyed table. Usually none of the keys is there yet
   * (apply waits for the snapshot, and chunks are disjoint key ranges), so
   * COPY goes straight into the table. When a key is already there (a chunk
   * re-run after a crash, a table that had rows) the unique index rejects the
   * COPY; it is rolled back to a savepoint and the rows go through a staging
   * table as an upsert instead, in the same transaction. Either way the
   * result equals the upsert, so a re-run stays idempotent.
   */
  private async copyUpsert(c: Client, dest: TableRef, columns: ColumnType[], key: string[], text: string[]): Promise<void> {
    if (this.uniqueKeyed.get(qt(dest)) === undefined) this.uniqueKeyed.set(qt(dest), await hasUniqueKey(c, dest, key));
    if (this.uniqueKeyed.get(qt(dest))) {
      await c.query('SAVEPOINT tributary_copy');
      try {
        await copyRows(c, dest, columns, text);
        await c.query('RELEASE SAVEPOINT tributary_copy');
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '23505') throw err;
        await c.query('ROLLBACK TO SAVEPOINT tributary_copy');
      }
    }
    await this.stageUpsert(c, dest, columns, key, text);
  }

  /** COPY into a temporary staging table, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE: the upsert without a bind parameter per value. */
  private async stageUpsert(c: Client, dest: TableRef, columns: ColumnType[], key: string[], text: string[]): Promise<void> {
    const shape = `${qt(dest)}\u0000${columns.map((col) => `${col.name}:${col.sourceType}:${col.pgType ?? ''}`).join('\u0001')}`;
    const name = `tributary_stage_${createHash('sha1').update(shape).digest('hex').slice(0, 20)}`;
    const stage = `pg_temp.${name}`;
    let known = this.stages.get(c);
    if (!known) { known = new Map(); this.stages.set(c, known); }
    const used = known.get(name);
    if (used === undefined) await c.query(`CREATE TEMP TABLE IF NOT EXISTS ${name} (LIKE ${qt(dest)}) ON COMMIT DELETE ROWS`);
    else if (used) await c.query(`TRUNCATE ${stage}`);
    known.set(name, true);
    await copyRows(c, stage, columns, text);
    const names = columns.map((col) => qi(col.name)).join(', ');
    const sets = columns.filter((col) => !key.includes(col.name)).map((col) => `${qi(col.name)} = EXCLUDED.${qi(col.name)}`);
    await c.query(`INSERT INTO ${qt(dest)} (${names}) SELECT ${names} FROM ${stage}
      ON CONFLICT (${key.map(qi).join(', ')}) DO ${sets.length ? `UPDATE SET ${sets.join(', ')}` : 'NOTHING'}`);
  }

  async isChunkDone(chunkId: string): Promise<boolean> {
    await this.ensureMeta();
    const r = await this.query(`SELECT 1 FROM ${CHUNKS} WHERE job_id = $1 AND chunk_id = $2 AND done_at IS NOT NULL`, [this.opts.jobId, chunkId]);
    return (r.rowCount ?? 0) > 0;
  }

  async applyBatch(events: ChangeEvent[], lane: number, sequence: string): Promise<void> {
    await this.ensureMeta();
    events = await this.covers.filter(events);
    const fresh = unseenTables(events, this.seenTables);
    // Lanes run concurrently: a lane that finds a table already seen must still wait until the lane
    // that saw it first has created it, or its rows reach a table that does not exist yet.
    const creation = this.tableCreation.then(async () => { for (const t of fresh) await this.ensureTable(t); });
    this.tableCreation = creation.catch(() => undefined);
    try {
      await creation;
    } catch (err) {
      unsee(fresh, this.seenTables);
      throw err;
    }
    let written = false;
    await this.tx(async (c) => {
      written = false;
      // The lock also fences off a second worker on the same lane (a stalled job picked up twice).
      const cur = await c.query<{ sequence: string }>(
        `SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = $1 AND lane = $2 FOR UPDATE`, [this.opts.jobId, lane]);
      const cp = cur.rows[0]?.sequence ?? null;
      this.laneCommits.check(lane, cp);
      const todo = cp === null ? events : events.filter((e) => compareSequences(e.sequence, cp) > 0);
      for (const step of planBatch(todo)) await this.runStep(c, step);
      if (cp === null || compareSequences(sequence, cp) > 0) {
        await c.query(
          `INSERT INTO ${CHECKPOINTS} (job_id, lane, sequence, updated_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (job_id, lane) DO UPDATE SET sequence = EXCLUDED.sequence, updated_at = EXCLUDED.updated_at`,
          [this.opts.jobId, lane, sequence],
        );
        written = true;
      }
    });
    if (written) this.laneCommits.committed(lane, sequence);
  }

  async resetForResnapshot(tables: TableInfo[], lanes: number, through: string): Promise<void> {
    await this.ensureMeta();
    await this.tx(async (c) => {
      // Lane rows locked first: an apply of the previous run still committing waits, then finds itself behind `through`.
      await c.query(`SELECT 1 FROM ${CHECKPOINTS} WHERE job_id = $1 FOR UPDATE`, [this.opts.jobId]);
      for (const t of tables) await c.query(`TRUNCATE ${qt(destTable({ schema: t.schema, table: t.table }, this.opts.rename))}`);
      await c.query(`DELETE FROM ${CHUNKS} WHERE job_id = $1`, [this.opts.jobId]);
      for (let lane = 0; lane < lanes; lane++) {
        await c.query(
          `INSERT INTO ${CHECKPOINTS} (job_id, lane, sequence, updated_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (job_id, lane) DO UPDATE SET sequence = EXCLUDED.sequence, updated_at = EXCLUDED.updated_at`,
          [this.opts.jobId, lane, through],
        );
      }
    });
  }

  async readCheckpoint(lane: number): Promise<string | null> {
    await this.ensureMeta();
    const r = await this.query<{ sequence: string }>(`SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = $1 AND lane = $2`, [this.opts.jobId, lane]);
    return r.rows[0]?.sequence ?? null;
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end().catch((err: Error) => this.logger.warn({ err: err.message }, 'closing the pool failed'));
    return this.closing;
  }

  // ------------------------------------------------------------ internals

  private ensureMeta(): Promise<void> {
    this.meta ??= this.tx(async (c) => {
      await c.query(DDL_LOCK_SQL);
      for (const sql of META_DDL) await c.query(sql);
    }).catch((err) => { this.meta = undefined; throw err; });
    return this.meta;
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw toApplyError(err);
    }
  }

  /** A transaction that lost a deadlock or serialization conflict is rolled back whole, so it runs again. */
  private async tx<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.txOnce(fn);
      } catch (err) {
        const code = ((err as { cause?: { code?: string } }).cause ?? (err as { code?: string })).code;
        if (attempt >= 5 || (code !== '40P01' && code !== '40001')) throw err;
        await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
      }
    }
  }

  private async txOnce<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    if (this.closing) throw new FatalError('applier is closed');
    let c: Client;
    try { c = await this.pool.connect(); } catch (err) { throw toApplyError(err); }
    let broken = false;
    const stages = this.stages.get(c);
    if (stages) for (const name of stages.keys()) stages.set(name, false);
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      // A staging table created in the rolled-back transaction is gone: create again on next use.
      this.stages.delete(c);
      await c.query('ROLLBACK').catch(() => { broken = true; });
      throw err instanceof ReplicationError ? err : toApplyError(err);
    } finally {
      c.release(broken);
    }
  }

  /** CREATE (schema and table) or ADD the missing columns; serialised by an advisory lock. */
  private async ensureTableIn(c: Client, src: TableRef, columns: ColumnType[], key: string[]): Promise<void> {
    const ref = destTable(src, this.opts.rename);
    const name = `${src.schema}.${src.table}`;
    for (const k of key) {
      const col = columns.find((x) => x.name === k);
      if (!col) throw new FatalError(`key column ${k} of ${name} is not among its columns`);
      assertKeyable('postgres', col, name);
    }
    await c.query(DDL_LOCK_SQL);
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${qi(ref.schema)}`);
    const have = await c.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, [ref.schema, ref.table]);
    if (have.rowCount === 0) {
      await c.query(createTableSql(ref, columns, key));
      return;
    }
    const existing = new Set(have.rows.map((r) => r.column_name));
    for (const col of columns) if (!existing.has(col.name)) await c.query(addColumnSql(ref, col));
  }

  private async runStep(c: Client, step: Step): Promise<void> {
    if (step.kind === 'ddl') return this.applyDdl(c, step.event);
    const dest = destTable(step.ref, this.opts.rename);
    const sites = siteList(step.ref, step.columns);
    switch (step.kind) {
      case 'upsert':
      case 'insert': {
        const key = step.kind === 'upsert' ? step.key : undefined;
        // Large upserts (streaming batches) go through COPY + staging: far fewer bytes to parse and plan than VALUES lists.
        if (key && step.rows.length >= STAGE_MIN_ROWS) {
          await this.stageUpsert(c, dest, step.columns, key, copyText(step.rows, sites));
          return;
        }
        for (const part of chunkRows(step.rows, sites.length, this.rowsPerStatement, PG_MAX_PARAMS)) {
          await c.query(insertSql(dest, step.columns, part.length, key), params(part, sites));
        }
        return;
      }
      case 'delete':
        for (const part of chunkRows(step.keys, sites.length, this.rowsPerStatement, PG_MAX_PARAMS)) {
          await c.query(deleteKeysSql(dest, step.columns, part.length), params(part, sites));
        }
        return;
      case 'delete-one': {
        const r = await c.query(deleteOneSql(dest, step.columns), params([step.row], sites));
        if (r.rowCount === 0) this.logger.warn({ table: `${dest.schema}.${dest.table}` }, 'keyless delete/update matched no row');
        return;
      }
    }
  }

  private async applyDdl(c: Client, e: ChangeEvent): Promise<void> {
    const stmt = e.ddl ?? '';
    const ref = { schema: e.schema, table: e.table };
    const action = classifyDdl(stmt, { fromPgCapture: e.source === 'postgres', at: ref });
    switch (action.kind) {
      case 'ignore':
        return;
      case 'rename-table': {
        const from = destTable(action.from, this.opts.rename);
        const to = destTable(action.to, this.opts.rename);
        await c.query(DDL_LOCK_SQL);
        const r = await c.query<{ t: string }>(
          `SELECT table_schema::text || '.' || table_name::text AS t FROM information_schema.tables
            WHERE (table_schema = $1 AND table_name = $2) OR (table_schema = $3 AND table_name = $4)`, [from.schema, from.table, to.schema, to.table]);
        const have = new Set(r.rows.map((x) => x.t));
        const hasFrom = have.has(`${from.schema}.${from.table}`);
        const hasTo = have.has(`${to.schema}.${to.table}`);
        // Safe to repeat: done already when only the new name is there.
        if (hasFrom && hasTo) throw new FatalError(`cannot follow ${stmt}: the destination has both ${qt(from)} and ${qt(to)}`);
        if (!hasFrom) return;
        if (from.schema !== to.schema) {
          await c.query(`CREATE SCHEMA IF NOT EXISTS ${qi(to.schema)}`);
          await c.query(`ALTER TABLE ${qt(from)} SET SCHEMA ${qi(to.schema)}`);
        }
        if (from.table !== to.table) await c.query(`ALTER TABLE ${qt({ schema: to.schema, table: from.table })} RENAME TO ${qi(to.table)}`);
        return;
      }
      case 'labels':
        await this.ensureTableIn(c, ref, e.columns, e.key);
        for (const col of e.columns) if (col.kind === 'enum' || col.kind === 'set') await replaceLabelCheck(c, destTable(ref, this.opts.rename), col);
        return;
      case 'truncate':
        await c.query(`TRUNCATE ${qt(destTable(ref, this.opts.rename))}`);
        return;
      case 'create':
      case 'columns': {
        if (e.columns.length === 0) throw new UnsupportedDdlError(stmt);
        const dest = destTable(ref, this.opts.rename);
        // Renamed before the new shape is ensured, so the column keeps its values instead of a new empty one.
        if (action.kind === 'columns') for (const [from, to] of action.renames) await renameColumnIfPresent(c, dest, from, to);
        await this.ensureTableIn(c, ref, e.columns, e.key);
        if (action.kind === 'columns') {
          for (const d of action.drops) if (!e.columns.some((col) => col.name === d)) await c.query(dropColumnSql(dest, d));
          for (const name of action.retypes) {
            const col = e.columns.find((x) => x.name === name);
            if (!col) throw new UnsupportedDdlError(stmt);
            await c.query(retypeColumnSql(dest, col));
          }
        }
        return;
      }
    }
  }
}

/** Drops the CHECKs on the column alone (the one created with the table, or an earlier replacement) and adds one with the labels now. */
async function replaceLabelCheck(c: Client, dest: TableRef, col: ColumnType): Promise<void> {
  const add = labelCheckSql(dest, col);
  if (!add) return;
  const r = await c.query<{ name: string }>(
    `SELECT con.conname::text AS name FROM pg_constraint con
       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey)
      WHERE con.conrelid = to_regclass($1) AND con.contype = 'c' AND array_length(con.conkey, 1) = 1 AND a.attname = $2`,
    [qt(dest), col.name],
  );
  for (const { name } of r.rows) await c.query(`ALTER TABLE ${qt(dest)} DROP CONSTRAINT ${qi(name)}`);
  await c.query(add);
}

/**
 * RENAME COLUMN, safe to repeat: only while the destination still has `from`.
 * A `to` there too was added ahead by an earlier DDL event: a MariaDB event's
 * columns are the table when the event is read, which may be after a later
 * rename (a -> b, then b -> c: the first event already shows c). Holding
 * nothing yet (rows name their columns as written, so they went to `from`),
 * it gives way to `from` and its values.
 */
async function renameColumnIfPresent(c: Client, dest: TableRef, from: string, to: string): Promise<void> {
  const r = await c.query<{ n: string }>(
    `SELECT column_name::text AS n FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = ANY($3::text[])`,
    [dest.schema, dest.table, [from, to]],
  );
  const names = new Set(r.rows.map((x) => x.n));
  if (!names.has(from)) return;
  if (names.has(to)) {
    const held = await c.query(`SELECT 1 FROM ${qt(dest)} WHERE ${qi(to)} IS NOT NULL LIMIT 1`);
    if (held.rowCount) return;
    await c.query(`ALTER TABLE ${qt(dest)} DROP COLUMN ${qi(to)}`);
  }
  await c.query(`ALTER TABLE ${qt(dest)} RENAME COLUMN ${qi(from)} TO ${qi(to)}`);
}

/** A primary key or unique index on exactly `key`: without one a COPY could duplicate rows instead of failing. */
async function hasUniqueKey(c: Client, dest: TableRef, key: string[]): Promise<boolean> {
  const r = await c.query<{ cols: string[] }>(
    `SELECT array_agg(a.attname::text ORDER BY a.attname) AS cols
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      GROUP BY i.indexrelid`, [qt(dest)]);
  const want = [...key].sort().join('\u0000');
  return r.rows.some((row) => [...row.cols].sort().join('\u0000') === want);
}

function siteList(ref: TableRef, columns: ColumnType[]): ValueSite[] {
  const table = `${ref.schema}.${ref.table}`;
  return columns.map((column) => ({ table, column }));
}

function params(rows: Row[], sites: ValueSite[]): unknown[] {
  const out: unknown[] = [];
  for (const row of rows) for (const s of sites) out.push(toPgParam(row[s.column.name], s));
  return out;
}
