/**
 * Applier for a PostgreSQL destination (`pg`): the dialect of the shared
 * skeleton (sql-applier.ts). PostgreSQL DDL is transactional, so a batch is
 * one transaction, DDL and all. Snapshot loads and large upserts travel as
 * COPY (pg-copy.ts), through per-session staging tables where they upsert.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { ChangeEvent, ColumnType, Row } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import { FatalError, ReplicationError, UnsupportedDdlError } from '../errors.ts';
import type { TableInfo } from '../table-info.ts';
import { toApplyError } from './apply-errors.ts';
import { chunkRows, type Step, type TableRef } from './batch-plan.ts';
import { classifyDdl } from './ddl.ts';
import { destTable } from './dest-names.ts';
import {
  DDL_LOCK_SQL, META_DDL, META_READY_SQL, PG_LEDGER, PG_MAX_PARAMS, addColumnSql, createTableSql, deleteKeysSql,
  deleteOneSql, dropColumnSql, guardCheckpointsText, retypeColumnSql, insertSql, labelCheckSql, lockCheckpointText, onConflictSql, pgLiterals, pgParams, pgSites, qi, qt,
  writeCheckpointText,
} from './pg-sql.ts';
import { SqlApplier, type SqlApplierOptions } from './sql-applier.ts';
import { assertKeyable } from './type-map.ts';
import { pgCopyTextSafe } from './value-params.ts';
import { COPY_DONE, copyFrames, copyIn, copyParts, copyRows, copySinks, copySql, copyText, putCopyRows, type CopyChunk } from './pg-copy.ts';
import type { ByteSink } from '../byte-sink.ts';
import { DestTypes } from './pg-wire-copy.ts';

/** `rowsPerStatement` is also bounded by 65535 parameters. */
export type PgApplierOptions = SqlApplierOptions;

type Client = pg.PoolClient;

/** Upsert steps with at least this many rows are staged through COPY. */
const STAGE_MIN_ROWS = 200;
/** A batch sent at once (applyAtOnce) holds at most about this much statement text. */
const AT_ONCE_MAX_CHARS = 1 << 20;
/** ... and at most about this much COPY data. */
const AT_ONCE_MAX_COPY_BYTES = 8 << 20;

export class PgApplier extends SqlApplier<Client, CopyChunk[]> {
  protected readonly ledger = PG_LEDGER;
  protected readonly transactionalDdl = true;
  private readonly pool: pg.Pool;
  /** Per destination table: has a unique index on exactly the key columns (COPY straight in is safe). */
  private readonly uniqueKeyed = new Map<string, boolean>();
  /**
   * Staging tables each pooled session has (temporary, ON COMMIT DELETE ROWS): name -> used in the open
   * transaction. Created once per session and table shape instead of once per batch (issue 12: the
   * CREATE/DROP pair per batch cost the destination catalog work and two round trips).
   */
  private readonly stages = new WeakMap<Client, Map<string, boolean>>();
  /** Lane transactions sent at once (applyAtOnce): committed so, and failed there and applied the ordinary way. */
  readonly atOnce = { committed: 0, fellBack: 0 };
  /** A statement (no parameters) to send with the open transaction's COMMIT, per session (lastCheckpointWrite). */
  private readonly commitWith = new WeakMap<Client, string>();
  /** Per destination table: which columns take a PostgreSQL source's text as it is (pg-wire-copy.ts). */
  private readonly destTypes = new DestTypes();
  /** Sessions whose open transaction has copyUpsert's savepoint (released when the next one is set). */
  private readonly savepointOpen = new WeakSet<Client>();

  constructor(conn: DbConnectionConfig, opts: PgApplierOptions) {
    super('postgres', 'PgApplier', conn, opts);
    this.pool = new pg.Pool({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password,
      database: conn.database ?? 'postgres',
      max: opts.poolSize ?? 4,
      // pg-pool closes a connection idle for 10 s by default: a stream quiet for that long then paid a new connection
      // (and the server's new backend) on its next transaction, on the latency of its first rows (issue 12, lag bench).
      idleTimeoutMillis: 300_000,
      application_name: 'tributary-apply',
      ssl: conn.tls?.enabled ? { rejectUnauthorized: conn.tls.rejectUnauthorized ?? true, ca: conn.tls.ca } : undefined,
    });
    // An idle client that dies must not crash the process; the next checkout reconnects.
    this.pool.on('error', (err) => this.logger.warn({ err: err.message }, 'idle destination connection failed'));
  }

  // ------------------------------------------------------------ connections and transactions

  protected async select<R>(c: Client | undefined, sql: string, params: unknown[]): Promise<R[]> {
    if (c) return (await c.query(sql, params)).rows as R[];
    try {
      return (await this.pool.query(sql, params)).rows as R[];
    } catch (err) {
      throw toApplyError(err);
    }
  }

  protected async run(c: Client, sql: string, params?: unknown[]): Promise<void> {
    await c.query(sql, params);
  }

  /** Every transaction on a connection of its own (PostgreSQL never needs a held session: DDL is transactional). */
  protected tx<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    return this.retried(() => this.txOnce(fn));
  }

  /**
   * BEGIN and the lane's checkpoint lock in one simple query, and (lastCheckpointWrite) the checkpoint
   * write with COMMIT: three round trips for a small batch instead of five. Same statements, same order,
   * same transaction; a failure in either string aborts the transaction and txOnce rolls it back.
   */
  protected override laneTx(lane: number, fn: (c: Client, cp: string | null) => Promise<void>): Promise<void> {
    return this.retried(() => this.txOnce(
      (c, opened) => fn(c, (opened?.rows[0] as { sequence?: string } | undefined)?.sequence ?? null),
      (c) => lockCheckpointText(this.jobId, lane, (x) => c.escapeLiteral(x)),
    ));
  }

  protected override async lastCheckpointWrite(c: Client, lane: number, sequence: string): Promise<void> {
    this.commitWith.set(c, writeCheckpointText(this.jobId, lane, sequence, (x) => c.escapeLiteral(x)));
  }

  /**
   * BEGIN, the guarded checkpoint lock, the steps, the checkpoint write and COMMIT as one simple query: one round
   * trip and one socket write per lane and batch instead of three or more (issue 12: socket writes and round trips
   * were a large share of the process's time). Small steps carry their values as literals; COPY-sized upserts carry
   * theirs as COPY data after the query (pg-copy.ts copyIn), fresh rows straight into the table, others through the
   * session's staging table. A keyless delete, DDL, or a value without a literal form, takes the ordinary path. A
   * failure of any kind (the guard, a key already there for a fresh COPY) rolls back and says false: the ordinary
   * path then reads the checkpoint under its lock and applies what is past it, so a commit whose reply was lost is
   * not applied twice.
   */
  protected override async applyAtOnce(expected: Map<number, string>, steps: Step[], sequence: string): Promise<boolean> {
    if (steps.some((step) => step.kind === 'ddl' || step.kind === 'delete-one')) return false;
    if (this.closing) throw new FatalError('applier is closed');
    let c: Client;
    try { c = await this.pool.connect(); } catch { return false; }
    const sink = copySinks.take();
    let broken = false;
    try {
      const stages = this.stages.get(c);
      if (stages) for (const name of stages.keys()) stages.set(name, false);
      const parts = ['BEGIN', guardCheckpointsText(this.jobId, expected)];
      const copies: number[] = [];
      let chars = 0;
      for (const step of steps) {
        const sqls = await this.atOnceStep(c, step, sink, copies);
        if (!sqls) return false;
        for (const sql of sqls) { parts.push(sql); chars += sql.length; }
        if (chars > AT_ONCE_MAX_CHARS || sink.len > AT_ONCE_MAX_COPY_BYTES) return false;
      }
      for (const lane of expected.keys()) parts.push(writeCheckpointText(this.jobId, lane, sequence, pg.escapeLiteral));
      parts.push('COMMIT');
      try {
        if (copies.length === 0) await c.query(parts.join(';\n'));
        else await copyIn(c, parts.join(';\n'), copyParts(sink, copies));
        this.atOnce.committed++;
        return true;
      } catch (err) {
        this.stages.delete(c);
        await c.query('ROLLBACK').catch(() => { broken = true; });
        this.atOnce.fellBack++;
        this.logger.debug({ lanes: [...expected.keys()], err: (err as Error).message }, 'batch sent at once failed; applying it the ordinary way');
        return false;
      }
    } catch {
      // A value that cannot be converted, or the unique-key lookup failing: the ordinary path says why.
      return false;
    } finally {
      c.release(broken);
      copySinks.give(sink);
    }
  }

  /**
   * A step's statements for applyAtOnce, or undefined when it goes the ordinary way only. A COPY-sized upsert writes
   * its rows into `sink` and pushes where they end (a COPY's data is what the sink holds from the previous end on).
   */
  private async atOnceStep(c: Client, step: Step, sink: ByteSink, copies: number[]): Promise<string[] | undefined> {
    if (step.kind === 'ddl' || step.kind === 'delete-one') return undefined;
    const dest = destTable(step.ref, this.opts.rename);
    const sites = pgSites(step.ref, step.columns);
    const out: string[] = [];
    if (step.kind === 'delete') {
      for (const part of chunkRows(step.keys, sites.length, this.rowsPerStatement, PG_MAX_PARAMS)) {
        const vals = pgLiterals(part, sites);
        if (!vals) return undefined;
        out.push(deleteKeysSql(dest, step.columns, part.length, vals));
      }
      return out;
    }
    const key = step.kind === 'upsert' ? step.key : undefined;
    if (key && step.rows.length >= STAGE_MIN_ROWS) {
      putCopyRows(sink, step.rows, sites, await this.destTypes.wireSafe(c, dest, step.columns, step.rows));
      copies.push(sink.len);
      const direct = step.kind === 'upsert' && step.fresh && await this.isUniqueKeyed(c, dest, key);
      return [direct ? copySql(dest, step.columns) : this.stageSql(c, dest, step.columns, key)];
    }
    for (const part of chunkRows(step.rows, sites.length, this.rowsPerStatement, PG_MAX_PARAMS)) {
      const vals = pgLiterals(part, sites);
      if (!vals) return undefined;
      out.push(insertSql(dest, step.columns, part.length, key, vals));
    }
    return out;
  }

  protected session<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    return this.tx(fn);
  }

  protected conflictCode(err: unknown): string | undefined {
    const code = ((err as { cause?: { code?: string } }).cause ?? (err as { code?: string })).code;
    return code === '40P01' || code === '40001' ? code : undefined;
  }

  /** `withBegin`: a statement (no parameters) sent with BEGIN in one simple query; its result goes to `fn`. */
  private async txOnce<T>(fn: (c: Client, opened?: pg.QueryResult) => Promise<T>, withBegin?: (c: Client) => string): Promise<T> {
    if (this.closing) throw new FatalError('applier is closed');
    let c: Client;
    try { c = await this.pool.connect(); } catch (err) { throw toApplyError(err); }
    let broken = false;
    const stages = this.stages.get(c);
    if (stages) for (const name of stages.keys()) stages.set(name, false);
    this.commitWith.delete(c);
    this.savepointOpen.delete(c);
    try {
      let opened: pg.QueryResult | undefined;
      if (withBegin) opened = (await c.query(`BEGIN; ${withBegin(c)}`) as unknown as pg.QueryResult[])[1];
      else await c.query('BEGIN');
      const out = await fn(c, opened);
      const last = this.commitWith.get(c);
      this.commitWith.delete(c);
      await c.query(last === undefined ? 'COMMIT' : `${last}; COMMIT`);
      return out;
    } catch (err) {
      this.commitWith.delete(c);
      // A staging table created in the rolled-back transaction is gone: create again on next use.
      this.stages.delete(c);
      await c.query('ROLLBACK').catch(() => { broken = true; });
      throw err instanceof ReplicationError ? err : toApplyError(err);
    } finally {
      c.release(broken);
    }
  }

  protected endPool(): Promise<void> {
    return this.pool.end();
  }

  protected async setUpMeta(): Promise<void> {
    if ((await this.select<{ ready: boolean }>(undefined, META_READY_SQL, []))[0]?.ready) return;
    await this.tx(async (c) => {
      await c.query(DDL_LOCK_SQL);
      for (const sql of META_DDL) await c.query(sql);
    });
  }

  // ------------------------------------------------------------ rows

  /** COPY text: values are converted (and checked) before the transaction, so COPY never starts on a bad value. */
  protected prepareRows(ref: TableRef, columns: ColumnType[], rows: Row[]): CopyChunk[] {
    return rows.length ? copyText(rows, pgSites(ref, columns)) : [];
  }

  /** Snapshot rows of a keyed table as COPY text the source made (see pgCopyTextSafe): loaded as loadChunk loads its rows. */
  loadChunkCopyText(table: TableInfo, text: Buffer, rows: number, chunkId: string, final: boolean): Promise<void> {
    if (table.key.length === 0) throw new FatalError('COPY text is for keyed tables only');
    return this.loadPrepared(table, rows ? [text] : [], rows, chunkId, final);
  }

  copyTextSafe(column: ColumnType): boolean {
    return pgCopyTextSafe(column);
  }

  protected async loadRows(c: Client, ref: TableRef, table: TableInfo, text: CopyChunk[]): Promise<void> {
    const dest = destTable(ref, this.opts.rename);
    if (table.key.length === 0) await copyRows(c, dest, table.columns, text);
    else await this.copyUpsert(c, dest, table.columns, table.key, copyFrames(text));
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
  private async copyUpsert(c: Client, dest: TableRef, columns: ColumnType[], key: string[], frames: Buffer[]): Promise<void> {
    if (frames.length === 0) return;
    if (await this.isUniqueKeyed(c, dest, key)) {
      // The savepoint stays until the next one replaces it or the transaction ends: no round trip to release it.
      const release = this.savepointOpen.has(c) ? 'RELEASE SAVEPOINT tributary_copy; ' : '';
      try {
        await copyIn(c, `${release}SAVEPOINT tributary_copy; ${copySql(dest, columns)}`, [...frames, COPY_DONE]);
        this.savepointOpen.add(c);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '23505') throw err;
        await c.query('ROLLBACK TO SAVEPOINT tributary_copy');
        this.savepointOpen.add(c);
      }
    }
    await this.stageUpsert(c, dest, columns, key, frames);
  }

  /**
   * COPY into a temporary staging table, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE: the upsert without a
   * bind parameter per value, in one simple query (stageSql).
   */
  private async stageUpsert(c: Client, dest: TableRef, columns: ColumnType[], key: string[], frames: Buffer[]): Promise<void> {
    if (frames.length === 0) return;
    await copyIn(c, this.stageSql(c, dest, columns, key), [...frames, COPY_DONE]);
  }

  /** The staging table's creation or emptying, its COPY (data to follow) and the upsert from it, for session `c`. */
  private stageSql(c: Client, dest: TableRef, columns: ColumnType[], key: string[]): string {
    const shape = `${qt(dest)}\u0000${columns.map((col) => `${col.name}:${col.sourceType}:${col.pgType ?? ''}`).join('\u0001')}`;
    const name = `tributary_stage_${createHash('sha1').update(shape).digest('hex').slice(0, 20)}`;
    const stage = `pg_temp.${name}`;
    let known = this.stages.get(c);
    if (!known) { known = new Map(); this.stages.set(c, known); }
    const used = known.get(name);
    const prepare = used === undefined ? `CREATE TEMP TABLE IF NOT EXISTS ${name} (LIKE ${qt(dest)}) ON COMMIT DELETE ROWS; `
      : used ? `TRUNCATE ${stage}; ` : '';
    known.set(name, true);
    const names = columns.map((col) => qi(col.name)).join(', ');
    return `${prepare}${copySql(stage, columns)}; INSERT INTO ${qt(dest)} (${names}) SELECT ${names} FROM ${stage} ${onConflictSql(columns, key)}`;
  }

  /** Whether a unique index covers exactly `key` (learnt once per table; DDL forgets it). */
  private async isUniqueKeyed(c: Client, dest: TableRef, key: string[]): Promise<boolean> {
    const known = this.uniqueKeyed.get(qt(dest));
    if (known !== undefined) return known;
    const unique = await hasUniqueKey(c, dest, key);
    this.uniqueKeyed.set(qt(dest), unique);
    return unique;
  }

  // ------------------------------------------------------------ DDL and steps

  /**
   * SqlApplier.tableReady: the table's columns and whether a unique index covers exactly its key, in one read
   * (what copyUpsert would otherwise look up on the first COPY of the table).
   */
  protected override async tableReady(table: TableInfo): Promise<boolean> {
    checkKey(table, table.columns, table.key);
    const dest = destTable(table, this.opts.rename);
    const row = (await this.select<{ cols: string[] | null; unique: boolean }>(undefined, TABLE_READY_SQL, [qt(dest), table.key]))[0];
    if (!row?.cols) return false;
    const have = new Set(row.cols);
    if (!table.columns.every((col) => have.has(col.name))) return false;
    if (table.key.length) this.uniqueKeyed.set(qt(dest), row.unique);
    return true;
  }

  /** CREATE (schema and table) or ADD the missing columns; serialised by an advisory lock. */
  protected async ensureTableOn(c: Client, src: TableRef, columns: ColumnType[], key: string[]): Promise<void> {
    const ref = destTable(src, this.opts.rename);
    checkKey(src, columns, key);
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

  protected async runStep(c: Client, step: Step): Promise<void> {
    if (step.kind === 'ddl') return this.applyDdl(c, step.event);
    const dest = destTable(step.ref, this.opts.rename);
    const sites = pgSites(step.ref, step.columns);
    switch (step.kind) {
      case 'upsert':
      case 'insert': {
        const key = step.kind === 'upsert' ? step.key : undefined;
        // Large upserts (streaming batches) go through COPY + staging: far fewer bytes to parse and plan than VALUES lists.
        // Rows new to the source in this batch (step.fresh) are copied straight into the table, as snapshot chunks are:
        // no staging table and no ON CONFLICT probe; a key there after all (a replay, rows made by hand) rolls the COPY
        // back to its savepoint and the rows take the staged upsert (copyUpsert).
        if (key && step.rows.length >= STAGE_MIN_ROWS) {
          const sink = copySinks.take();
          try {
            putCopyRows(sink, step.rows, sites, await this.destTypes.wireSafe(c, dest, step.columns, step.rows));
            const frames = [sink.buf.subarray(0, sink.len)];
            await (step.kind === 'upsert' && step.fresh ? this.copyUpsert(c, dest, step.columns, key, frames) : this.stageUpsert(c, dest, step.columns, key, frames));
          } finally {
            // copyIn settles only once the socket took every byte.
            copySinks.give(sink);
          }
          return;
        }
        for (const part of chunkRows(step.rows, sites.length, this.rowsPerStatement, PG_MAX_PARAMS)) {
          await c.query(insertSql(dest, step.columns, part.length, key), pgParams(part, sites));
        }
        return;
      }
      case 'delete':
        for (const part of chunkRows(step.keys, sites.length, this.rowsPerStatement, PG_MAX_PARAMS)) {
          await c.query(deleteKeysSql(dest, step.columns, part.length), pgParams(part, sites));
        }
        return;
      case 'delete-one': {
        const r = await c.query(deleteOneSql(dest, step.columns), pgParams([step.row], sites));
        if (r.rowCount === 0) this.logger.warn({ table: `${dest.schema}.${dest.table}` }, 'keyless delete/update matched no row');
        return;
      }
    }
  }

  protected async applyDdl(c: Client, e: ChangeEvent): Promise<void> {
    const stmt = e.ddl ?? '';
    const ref = { schema: e.schema, table: e.table };
    // What copyUpsert learnt of the tables' unique keys may not hold after DDL: learnt again on next use.
    this.uniqueKeyed.clear();
    this.destTypes.clear();
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
        await this.ensureTableOn(c, ref, e.columns, e.key);
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
        await this.ensureTableOn(c, ref, e.columns, e.key);
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

/** The key columns are among the columns, of types a key can have. */
function checkKey(src: TableRef, columns: ColumnType[], key: string[]): void {
  const name = `${src.schema}.${src.table}`;
  for (const k of key) {
    const col = columns.find((x) => x.name === k);
    if (!col) throw new FatalError(`key column ${k} of ${name} is not among its columns`);
    assertKeyable('postgres', col, name);
  }
}

/**
 * $1 a quoted table name, $2 its key columns: the table's live columns (NULL when there is no such table), and
 * whether a unique index (no predicate, no expression) has exactly the key's columns (tableReady and hasUniqueKey).
 */
const TABLE_READY_SQL = `SELECT
  (SELECT array_agg(a.attname::text) FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols,
  EXISTS (SELECT 1 FROM pg_index i
    CROSS JOIN LATERAL (SELECT array_agg(a.attname::text) AS names FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) k
    WHERE i.indrelid = r.oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL AND k.names @> $2::text[] AND k.names <@ $2::text[]) AS unique
  FROM (SELECT to_regclass($1) AS oid) r`;

/** A primary key or unique index on exactly `key`: without one a COPY could duplicate rows instead of failing. */
async function hasUniqueKey(c: Client, dest: TableRef, key: string[]): Promise<boolean> {
  const r = await c.query<{ unique: boolean }>(TABLE_READY_SQL, [qt(dest), key]);
  return r.rows[0]?.unique === true;
}
