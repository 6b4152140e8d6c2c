/**
 * Applier for a MariaDB/MySQL destination (mysql2/promise). Rows and the
 * lane checkpoint commit in one InnoDB transaction. MariaDB DDL commits
 * implicitly, so a batch is cut at each DDL event: the rows before it commit
 * with a checkpoint at their last event, the DDL runs in a form that is safe
 * to repeat (IF NOT EXISTS, existing columns looked up first), then the
 * checkpoint moves past it. A crash between DDL and checkpoint replays the
 * DDL, which then changes nothing. TRUNCATE is applied as DELETE inside the
 * transaction, so it stays atomic with its checkpoint.
 *
 * Sessions run with time_zone '+00:00' (timestamps are written as UTC) and
 * a strict sql_mode without NO_ZERO_DATE (zero dates from a MariaDB source
 * are kept as they are).
 */
import mysql from 'mysql2/promise';
import type { ChangeEvent, ColumnType, Row } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import { FatalError, ReplicationError, UnsupportedDdlError } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { compareSequences } from '../sequence.ts';
import type { TableInfo } from '../table-info.ts';
import { toApplyError } from './apply-errors.ts';
import { LaneCommits, SnapshotCovers, unseenTables, unsee, type Applier, type ApplierOptions } from './applier.ts';
import { planBatch, type Step, type TableRef } from './batch-plan.ts';
import { classifyDdl } from './ddl.ts';
import { destTable } from './dest-names.ts';
import { cutAtDdl } from './lanes.ts';
import {
  ADD_COVERS_SQL, CHECKPOINTS, CHUNKS, DDL_LOCK, HAS_COVERS_SQL, MAX_STATEMENT_BYTES, META_DDL, addColumnSql, createDatabaseSql, createTableSql,
  deleteKeysSql, deleteOneSql, dropColumnSql, insertSql, modifyColumnSql, qi, qt, relaxedSql, setInvalidEnumSql,
} from './mysql-sql.ts';
import { isInvalidEnum, MARIADB_CAPS, mysqlHashedKey, toMysqlParam, type MysqlCaps, type RawSql, type ValueSite } from './type-map.ts';

export interface MysqlApplierOptions extends ApplierOptions {
  /** Connections in the pool; one per concurrently applying lane. Default 4. */
  poolSize?: number;
  /** Rows per INSERT/DELETE statement (also bounded to about 4 MiB of SQL). Default 1000. */
  rowsPerStatement?: number;
  /** Default: silent. */
  logger?: Logger;
}

type Conn = mysql.PoolConnection;

/** Attempts of one transaction that lost a deadlock before the error goes up. */
const DEADLOCK_RETRIES = 5;

const SESSION_SQL = "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'";

export class MysqlApplier implements Applier {
  /** Table creations of unseen tables, in order: every batch waits for those started before it. */
  private tableCreation: Promise<void> = Promise.resolve();
  /** Tables whose destination this instance made sure of (see unseenTables). */
  private readonly seenTables = new Set<string>();
  private readonly pool: mysql.Pool;
  private readonly rowsPerStatement: number;
  private readonly logger: Logger;
  private caps: MysqlCaps = MARIADB_CAPS;
  private meta?: Promise<void>;
  private closing?: Promise<void>;
  private readonly keylessChunks = new Map<string, Row[]>();
  /** What each lane committed through this instance (a destination that forgets commits is caught). */
  private readonly laneCommits = new LaneCommits();
  /** Keyless tables: the stream changes their snapshot copy holds (skipped). */
  private readonly covers: SnapshotCovers;
  /** Core connections whose session variables are set. */
  private readonly prepared = new WeakSet<object>();

  constructor(conn: DbConnectionConfig, private readonly opts: MysqlApplierOptions) {
    if (conn.kind !== 'mysql') throw new FatalError(`MysqlApplier needs a mysql connection, got ${conn.kind}`);
    if (!opts.jobId) throw new FatalError('MysqlApplier needs a jobId');
    this.rowsPerStatement = opts.rowsPerStatement ?? 1000;
    if (!(this.rowsPerStatement >= 1)) throw new FatalError('rowsPerStatement must be >= 1');
    this.logger = (opts.logger ?? silentLogger).child({ component: 'mysql-applier' });
    this.covers = new SnapshotCovers(async (chunkId) => this.withConn(async (c) => {
      const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT covers FROM ${CHUNKS} WHERE job_id = ? AND chunk_id = ?`, [this.opts.jobId, chunkId]);
      return (rows[0]?.covers as string | null | undefined) ?? null;
    }), this.logger);
    this.pool = mysql.createPool({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password,
      database: conn.database,
      charset: 'utf8mb4',
      connectionLimit: opts.poolSize ?? 4,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      ssl: conn.tls?.enabled ? { rejectUnauthorized: conn.tls.rejectUnauthorized ?? true, ca: conn.tls.ca } : undefined,
    });
  }

  async ensureTable(table: TableInfo): Promise<void> {
    await this.ensureMeta();
    await this.withConn((c) => this.ensureTableOn(c, table, table.columns, table.key));
  }

  /** Same contract as PgApplier.loadChunk: keyed batches commit one by one, keyless chunks at their final call. */
  async loadChunk(table: TableInfo, rows: Row[], chunkId: string, final: boolean, cover?: string): Promise<void> {
    if (table.key.length === 0) {
      const held = this.keylessChunks.get(chunkId) ?? [];
      for (const r of rows) held.push(r);
      if (!final) { this.keylessChunks.set(chunkId, held); return; }
      this.keylessChunks.delete(chunkId);
      rows = held;
    }
    await this.ensureMeta();
    await this.withConn((c) => this.tx(c, async () => {
      const [done] = await c.query<mysql.RowDataPacket[]>(
        `SELECT 1 FROM ${CHUNKS} WHERE job_id = ? AND chunk_id = ? AND done_at IS NOT NULL`, [this.opts.jobId, chunkId]);
      if (done.length) return;
      const ref = { schema: table.schema, table: table.table };
      if (table.key.length === 0) {
        // DELETE, not TRUNCATE: TRUNCATE would commit the transaction on its own.
        await c.query(`DELETE FROM ${qt(destTable(ref, this.opts.rename))}`);
        await this.runStep(c, { kind: 'insert', ref, columns: table.columns, rows });
      } else if (rows.length) {
        await this.runStep(c, { kind: 'upsert', ref, columns: table.columns, key: table.key, rows });
      }
      if (final) {
        const covers = table.key.length === 0 ? cover ?? null : null;
        await c.query(
          `INSERT INTO ${CHUNKS} (job_id, chunk_id, done_at, covers) VALUES (?, ?, UTC_TIMESTAMP(6), ?)
           ON DUPLICATE KEY UPDATE done_at = VALUES(done_at), covers = VALUES(covers)`, [this.opts.jobId, chunkId, covers]);
      }
    }));
  }

  async isChunkDone(chunkId: string): Promise<boolean> {
    await this.ensureMeta();
    const rows = await this.withConn(async (c) => (await c.query<mysql.RowDataPacket[]>(
      `SELECT 1 FROM ${CHUNKS} WHERE job_id = ? AND chunk_id = ? AND done_at IS NOT NULL`, [this.opts.jobId, chunkId]))[0]);
    return rows.length > 0;
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
    await this.withConn(async (c) => {
      const segments = cutAtDdl(events);
      if (segments.length === 0) segments.push([]);
      for (let i = 0; i < segments.length; i++) {
        const seg = segments[i]!;
        const segSeq = i === segments.length - 1 ? sequence : seg[seg.length - 1]!.sequence;
        const ddl = seg.length === 1 && seg[0]!.op === 'ddl' ? seg[0]! : undefined;
        if (ddl && classifyDdl(ddl.ddl ?? '', { fromPgCapture: ddl.source === 'postgres', at: { schema: ddl.schema, table: ddl.table } }).kind !== 'truncate') {
          const cp = await this.readCheckpointOn(c, lane);
          this.laneCommits.check(lane, cp);
          if (cp === null || compareSequences(ddl.sequence, cp) > 0) await this.applyDdl(c, ddl);
          let written = false;
          await this.tx(c, async () => { written = await this.writeCheckpoint(c, lane, segSeq, await this.lockCheckpoint(c, lane)); });
          if (written) this.laneCommits.committed(lane, segSeq);
          continue;
        }
        let written = false;
        await this.tx(c, async () => {
          const cp = await this.lockCheckpoint(c, lane);
          this.laneCommits.check(lane, cp);
          const todo = cp === null ? seg : seg.filter((e) => compareSequences(e.sequence, cp) > 0);
          for (const step of planBatch(todo)) await this.runStep(c, step);
          written = await this.writeCheckpoint(c, lane, segSeq, cp);
        });
        if (written) this.laneCommits.committed(lane, segSeq);
      }
    });
  }

  async resetForResnapshot(tables: TableInfo[], lanes: number, through: string): Promise<void> {
    await this.ensureMeta();
    await this.withConn((c) => this.tx(c, async () => {
      // Lane rows locked first: an apply of the previous run still committing waits, then finds itself behind `through`.
      await c.query(`SELECT 1 FROM ${CHECKPOINTS} WHERE job_id = ? FOR UPDATE`, [this.opts.jobId]);
      // DELETE, not TRUNCATE: TRUNCATE would commit the transaction on its own.
      for (const t of tables) await c.query(`DELETE FROM ${qt(destTable({ schema: t.schema, table: t.table }, this.opts.rename))}`);
      await c.query(`DELETE FROM ${CHUNKS} WHERE job_id = ?`, [this.opts.jobId]);
      for (let lane = 0; lane < lanes; lane++) {
        await c.query(
          `INSERT INTO ${CHECKPOINTS} (job_id, lane, sequence, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
           ON DUPLICATE KEY UPDATE sequence = VALUES(sequence), updated_at = VALUES(updated_at)`, [this.opts.jobId, lane, through]);
      }
    }));
  }

  async readCheckpoint(lane: number): Promise<string | null> {
    await this.ensureMeta();
    return this.withConn((c) => this.readCheckpointOn(c, lane));
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end().catch((err: Error) => this.logger.warn({ err: err.message }, 'closing the pool failed'));
    return this.closing;
  }

  // ------------------------------------------------------------ internals

  private async withConn<T>(fn: (c: Conn) => Promise<T>): Promise<T> {
    if (this.closing) throw new FatalError('applier is closed');
    let c: Conn;
    try {
      c = await this.pool.getConnection();
      if (!this.prepared.has(c.connection)) {
        await c.query(SESSION_SQL);
        this.prepared.add(c.connection);
      }
    } catch (err) {
      throw toApplyError(err);
    }
    try {
      return await fn(c);
    } catch (err) {
      throw err instanceof ReplicationError ? err : toApplyError(err);
    } finally {
      c.release();
    }
  }

  /**
   * Concurrent lanes write disjoint keys, yet InnoDB gap locks can still make
   * two upserts deadlock; the loser is rolled back whole, so running it again
   * is safe.
   */
  private async tx<T>(c: Conn, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await c.beginTransaction();
      try {
        const out = await fn();
        await c.commit();
        return out;
      } catch (err) {
        await c.rollback().catch(() => c.destroy());
        const code = (err as { code?: string }).code;
        if (attempt >= DEADLOCK_RETRIES || (code !== 'ER_LOCK_DEADLOCK' && code !== 'ER_LOCK_WAIT_TIMEOUT')) throw err;
        this.logger.debug({ attempt, code }, 'transaction retried');
        await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
      }
    }
  }

  private ensureMeta(): Promise<void> {
    this.meta ??= this.withConn(async (c) => {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
      this.caps = capsOf(String(rows[0]?.v ?? ''));
      for (const sql of META_DDL) await c.query(sql);
      const [has] = await c.query<mysql.RowDataPacket[]>(HAS_COVERS_SQL);
      if (!has.length) await c.query(ADD_COVERS_SQL);
    }).catch((err) => { this.meta = undefined; throw err; });
    return this.meta;
  }

  private async readCheckpointOn(c: Conn, lane: number): Promise<string | null> {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = ? AND lane = ?`, [this.opts.jobId, lane]);
    return (rows[0]?.sequence as string | undefined) ?? null;
  }

  /** Also fences off a second worker on the same lane. */
  private async lockCheckpoint(c: Conn, lane: number): Promise<string | null> {
    const [rows] = await c.query<mysql.RowDataPacket[]>(
      `SELECT sequence FROM ${CHECKPOINTS} WHERE job_id = ? AND lane = ? FOR UPDATE`, [this.opts.jobId, lane]);
    return (rows[0]?.sequence as string | undefined) ?? null;
  }

  /** True when it moved the checkpoint (to `sequence`). */
  private async writeCheckpoint(c: Conn, lane: number, sequence: string, cp: string | null): Promise<boolean> {
    if (cp !== null && compareSequences(sequence, cp) <= 0) return false;
    await c.query(
      `INSERT INTO ${CHECKPOINTS} (job_id, lane, sequence, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
       ON DUPLICATE KEY UPDATE sequence = VALUES(sequence), updated_at = VALUES(updated_at)`, [this.opts.jobId, lane, sequence]);
    return true;
  }

  /** CREATE (database and table) or ADD the missing columns, under a named lock. DDL commits implicitly. */
  private async ensureTableOn(c: Conn, src: TableRef, columns: ColumnType[], key: string[], drops: string[] = [], renames: [string, string][] = [], retypes: string[] = []): Promise<void> {
    const ref = destTable(src, this.opts.rename);
    for (const k of key) {
      if (!columns.some((x) => x.name === k)) throw new FatalError(`key column ${k} of ${src.schema}.${src.table} is not among its columns`);
    }
    await c.query('SELECT GET_LOCK(?, 60)', [DDL_LOCK]);
    try {
      await c.query(createDatabaseSql(ref.schema));
      const [have] = await c.query<mysql.RowDataPacket[]>(
        'SELECT column_name AS c FROM information_schema.columns WHERE table_schema = ? AND table_name = ?', [ref.schema, ref.table]);
      if (have.length === 0) {
        await c.query(createTableSql(ref, columns, key, this.caps));
        return;
      }
      const existing = new Set(have.map((r) => String(r.c)));
      // Renamed before missing columns are added, so the column keeps its values (safe to repeat). A `to` there
      // too that holds nothing was added ahead by an earlier event (see the PostgreSQL applier's renameColumnIfPresent).
      for (const [from, to] of renames) {
        if (!existing.has(from)) continue;
        if (existing.has(to)) {
          const [held] = await c.query<mysql.RowDataPacket[]>(`SELECT 1 FROM ${qt(ref)} WHERE ${qi(to)} IS NOT NULL LIMIT 1`);
          if (held.length) continue;
          await c.query(dropColumnSql(ref, to));
        }
        await c.query(`ALTER TABLE ${qt(ref)} RENAME COLUMN ${qi(from)} TO ${qi(to)}`);
        existing.delete(from); existing.add(to);
      }
      for (const col of columns) if (!existing.has(col.name)) await c.query(addColumnSql(ref, col, this.caps));
      for (const d of drops) {
        if (existing.has(d) && !columns.some((col) => col.name === d)) await c.query(dropColumnSql(ref, d));
      }
      // A type changed at the source: the column takes the type it maps to now (MODIFY converts the values).
      for (const name of retypes) {
        const col = columns.find((x) => x.name === name);
        if (!col) throw new FatalError(`column ${name} of ${src.schema}.${src.table} changed type but is not among its columns`);
        await c.query(modifyColumnSql(ref, col, this.caps, key.includes(name)));
      }
    } finally {
      await c.query('SELECT RELEASE_LOCK(?)', [DDL_LOCK]);
    }
  }

  private async applyDdl(c: Conn, e: ChangeEvent): Promise<void> {
    const stmt = e.ddl ?? '';
    const action = classifyDdl(stmt, { fromPgCapture: e.source === 'postgres', at: { schema: e.schema, table: e.table } });
    if (action.kind === 'ignore') return;
    if (action.kind === 'rename-table') {
      const from = destTable(action.from, this.opts.rename);
      const to = destTable(action.to, this.opts.rename);
      await c.query('SELECT GET_LOCK(?, 60)', [DDL_LOCK]);
      try {
        const [rows] = await c.query<mysql.RowDataPacket[]>(
          `SELECT CONCAT(table_schema, '.', table_name) AS t FROM information_schema.tables
            WHERE (table_schema = ? AND table_name = ?) OR (table_schema = ? AND table_name = ?)`, [from.schema, from.table, to.schema, to.table]);
        const have = new Set(rows.map((x) => String(x.t)));
        const hasFrom = have.has(`${from.schema}.${from.table}`);
        const hasTo = have.has(`${to.schema}.${to.table}`);
        // Safe to repeat: done already when only the new name is there.
        if (hasFrom && hasTo) throw new FatalError(`cannot follow ${stmt}: the destination has both ${qt(from)} and ${qt(to)}`);
        if (!hasFrom) return;
        await c.query(createDatabaseSql(to.schema));
        await c.query(`RENAME TABLE ${qt(from)} TO ${qt(to)}`);
      } finally {
        await c.query('SELECT RELEASE_LOCK(?)', [DDL_LOCK]);
      }
      return;
    }
    if (action.kind === 'truncate') throw new FatalError('TRUNCATE is applied inside a transaction, not as DDL');
    if (e.columns.length === 0) throw new UnsupportedDdlError(stmt);
    if (action.kind === 'labels') {
      const ref = destTable({ schema: e.schema, table: e.table }, this.opts.rename);
      await this.ensureTableOn(c, { schema: e.schema, table: e.table }, e.columns, e.key);
      for (const col of e.columns) if (col.kind === 'enum' || col.kind === 'set') await c.query(modifyColumnSql(ref, col, this.caps, e.key.includes(col.name)));
      return;
    }
    if (action.kind === 'columns') await this.ensureTableOn(c, { schema: e.schema, table: e.table }, e.columns, e.key, action.drops, action.renames, action.retypes);
    else await this.ensureTableOn(c, { schema: e.schema, table: e.table }, e.columns, e.key);
  }

  private async runStep(c: Conn, step: Step): Promise<void> {
    if (step.kind === 'ddl') {
      // Only TRUNCATE reaches here (applyBatch runs other DDL outside transactions).
      await c.query(`DELETE FROM ${qt(destTable({ schema: step.event.schema, table: step.event.table }, this.opts.rename))}`);
      return;
    }
    const dest = destTable(step.ref, this.opts.rename);
    const table = `${step.ref.schema}.${step.ref.table}`;
    const key = step.kind === 'upsert' || step.kind === 'delete' ? step.key : [];
    // A hashed key's columns keep their full width (no 768-character key text): see mysqlHashedKey.
    const hashed = key.length > 0 && mysqlHashedKey(step.columns.filter((c) => key.includes(c.name)), this.caps);
    const sites: (ValueSite & { inKey: boolean })[] = step.columns.map((column) => ({ table, column, inKey: key.includes(column.name) && !hashed }));
    const toParams = (rows: Row[]): unknown[] => {
      const out: unknown[] = [];
      for (const row of rows) for (const s of sites) out.push(toMysqlParam(row[s.column.name], s, this.caps, s.inKey));
      return out;
    };
    switch (step.kind) {
      case 'upsert':
      case 'insert': {
        const invalid = this.caps.invalidEnum ? step.rows.filter((r) => step.columns.some((col) => isInvalidEnum(r[col.name], col))) : [];
        const rows = invalid.length ? step.rows.filter((r) => !invalid.includes(r)) : step.rows;
        for (const part of this.chunk(rows)) {
          await c.query(insertSql(dest, step.columns, part.length, step.kind === 'upsert' ? step.key : undefined), toParams(part));
        }
        for (const row of invalid) await this.writeInvalidEnumRow(c, dest, step.columns, key, row, toParams);
        return;
      }
      case 'delete':
        for (const part of this.chunk(step.keys)) await c.query(deleteKeysSql(dest, step.columns, part.length, hashed), toParams(part));
        return;
      case 'delete-one': {
        const [res] = await c.query<mysql.ResultSetHeader>(deleteOneSql(dest, step.columns), toParams([step.row]));
        if (res.affectedRows === 0) this.logger.warn({ table: `${dest.schema}.${dest.table}` }, 'keyless delete/update matched no row');
        return;
      }
    }
  }

  /**
   * A row holding MariaDB's invalid-ENUM value (index 0, '' in the feed): see
   * setInvalidEnumSql. When such a value is part of the key the row cannot
   * be written with NULL first, so that one upsert runs with strict mode off.
   */
  private async writeInvalidEnumRow(c: Conn, dest: TableRef, columns: ColumnType[], key: string[], row: Row, toParams: (rows: Row[]) => unknown[]): Promise<void> {
    const enumCols = columns.filter((col) => isInvalidEnum(row[col.name], col)).map((col) => col.name);
    const zero: RawSql = { toSqlString: () => '0' };
    if (enumCols.some((n) => key.includes(n))) {
      const params = toParams([row]).map((p, i) => (enumCols.includes(columns[i]!.name) ? zero : p));
      await c.query(relaxedSql(insertSql(dest, columns, 1, key)), params);
      return;
    }
    const nulled: Row = { ...row };
    for (const n of enumCols) nulled[n] = null;
    const params = toParams([nulled]);
    await c.query(insertSql(dest, columns, 1, key.length ? key : undefined), params);
    const match = key.length ? columns.filter((col) => key.includes(col.name)) : columns;
    const matchParams = match.filter((col) => !enumCols.includes(col.name)).map((col) => params[columns.indexOf(col)]);
    await c.query(setInvalidEnumSql(dest, enumCols, match, key.length > 0), matchParams);
  }

  /** Statements of at most rowsPerStatement rows and about MAX_STATEMENT_BYTES of SQL. */
  private chunk(rows: Row[]): Row[][] {
    const out: Row[][] = [];
    let cur: Row[] = [];
    let bytes = 0;
    for (const r of rows) {
      const size = rowBytes(r);
      if (cur.length && (cur.length >= this.rowsPerStatement || bytes + size > MAX_STATEMENT_BYTES)) {
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
}

/** Escaped size estimate: binary (base64) becomes hex, about 1.5x; text may double with escapes. */
function rowBytes(r: Row): number {
  let n = 8;
  for (const v of Object.values(r)) n += typeof v === 'string' ? v.length * 2 + 4 : 8;
  return n;
}

function capsOf(version: string): MysqlCaps {
  const m = /^(\d+)\.(\d+)/.exec(version);
  const [maj, min] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (/mariadb/i.test(version)) return { ...MARIADB_CAPS, uuidType: maj > 10 || (maj === 10 && min >= 7), longUnique: maj > 10 || (maj === 10 && min >= 4) };
  return { uuidType: false, textCollation: 'CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin', invalidEnum: false, longUnique: false };
}
