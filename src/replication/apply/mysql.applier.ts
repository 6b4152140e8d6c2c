/**
 * Applier for a MariaDB/MySQL destination (mysql2/promise): the dialect of
 * the shared skeleton (sql-applier.ts). MariaDB DDL commits implicitly, so
 * the skeleton cuts a batch at each DDL event and this module runs the DDL
 * in a form that is safe to repeat (IF NOT EXISTS, existing columns looked
 * up first). TRUNCATE is applied as DELETE inside the transaction, so it
 * stays atomic with its checkpoint.
 *
 * Sessions run with time_zone '+00:00' (timestamps are written as UTC) and
 * a strict sql_mode without NO_ZERO_DATE (zero dates from a MariaDB source
 * are kept as they are).
 */
import mysql from 'mysql2/promise';
import type { ChangeEvent, ColumnType, Row } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import { FatalError, ReplicationError, UnsupportedDdlError } from '../errors.ts';
import type { TableInfo } from '../table-info.ts';
import { toApplyError } from './apply-errors.ts';
import type { Step, TableRef } from './batch-plan.ts';
import { classifyDdl } from './ddl.ts';
import { destTable } from './dest-names.ts';
import {
  ADD_COVERS_SQL, DDL_LOCK, GUARDED_CHECKPOINT_SQL, HAS_COVERS_SQL, MAX_STATEMENT_BYTES, META_DDL, MYSQL_LEDGER, addColumnSql, createDatabaseSql, createTableSql, deleteKeysSql,
  deleteOneSql, dropColumnSql, insertSql, literalTuples, modifyColumnSql, mysqlParams, mysqlSites, qi, qt, relaxedSql, setInvalidEnumSql, statementRows,
  type MysqlSite,
} from './mysql-sql.ts';
import { BinlogRows } from './mysql-binlog-rows.ts';
import { SqlApplier, type SqlApplierOptions } from './sql-applier.ts';
import { isInvalidEnum, MARIADB_CAPS, mysqlHashedKey, type MysqlCaps } from './type-map.ts';
import type { RawSql } from './value-params.ts';

/**
 * `rowsPerStatement` is also bounded to about 4 MiB of SQL. `rowEvents` (default true): a MariaDB source's rows go
 * into a MariaDB destination as row events where they can (mysql-binlog-rows.ts); false: always as SQL.
 */
export interface MysqlApplierOptions extends SqlApplierOptions {
  rowEvents?: boolean;
}

type Conn = mysql.PoolConnection;

const SESSION_SQL = "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'";

export class MysqlApplier extends SqlApplier<Conn, Row[]> {
  protected readonly ledger = MYSQL_LEDGER;
  protected readonly transactionalDdl = false;
  private readonly pool: mysql.Pool;
  private caps: MysqlCaps = MARIADB_CAPS;
  /** Core connections whose session variables are set. */
  private readonly prepared = new WeakSet<object>();
  /** Upserts as row events (mysql-binlog-rows.ts); off until setUpMeta has seen a MariaDB destination. */
  private binlogRows = new BinlogRows(false);

  constructor(conn: DbConnectionConfig, private readonly mysqlOpts: MysqlApplierOptions) {
    super('mysql', 'MysqlApplier', conn, mysqlOpts);
    const opts = mysqlOpts;
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
      // No stack captured per query for an error that rarely comes (issue 12 profile: about 2% of the apply's
      // process); errors are turned into the applier's own (toApplyError) with the server's message and code.
      trace: false,
      // applyAtOnce sends a batch's statements as one query; every value in them is escaped (format).
      multipleStatements: true,
      queryFormat: literalOrFormat,
      ssl: conn.tls?.enabled ? { rejectUnauthorized: conn.tls.rejectUnauthorized ?? true, ca: conn.tls.ca } : undefined,
    });
  }

  // ------------------------------------------------------------ connections and transactions

  protected async select<R>(c: Conn | undefined, sql: string, params: unknown[]): Promise<R[]> {
    if (!c) return this.session((s) => this.select<R>(s, sql, params));
    const [rows] = await c.query<mysql.RowDataPacket[]>(sql, params);
    return rows as R[];
  }

  protected async run(c: Conn, sql: string, params?: unknown[]): Promise<void> {
    await c.query(sql, params);
  }

  protected tx<T>(fn: (c: Conn) => Promise<T>, on?: Conn): Promise<T> {
    return on ? this.txOn(on, fn) : this.session((c) => this.txOn(c, fn));
  }

  /** Retried on the same connection: a deadlock rolls the transaction back, not the session. */
  private txOn<T>(c: Conn, fn: (c: Conn) => Promise<T>): Promise<T> {
    return this.retried(async () => {
      await c.beginTransaction();
      try {
        const out = await fn(c);
        await c.commit();
        return out;
      } catch (err) {
        await c.rollback().catch(() => c.destroy());
        throw err;
      }
    });
  }

  /**
   * START TRANSACTION, the guarded checkpoint writes, the steps with their values as literals, and COMMIT as one
   * query: one round trip per batch instead of five or more (issue 12); one more per BINLOG statement of row events. The guard is the checkpoint write itself:
   * it sets the lane's sequence when it holds the expected one and NULL (an error in strict mode, which ends the
   * query there) otherwise, so nothing after it runs. A batch with DDL, a keyless delete or an invalid-ENUM row, or
   * too large for one packet, takes the ordinary path; so does one whose query failed anywhere (rolled back): that
   * path reads the checkpoint under its lock and applies what is past it, so a commit whose reply was lost is not
   * applied twice.
   */
  protected override async applyAtOnce(expected: Map<number, string>, steps: Step[], sequence: string): Promise<boolean> {
    if (steps.some((step) => step.kind === 'ddl' || step.kind === 'delete-one')) return false;
    if (steps.some((step) => (step.kind === 'upsert' || step.kind === 'insert') && this.invalidEnumRows(step.rows, step.columns).length)) return false;
    try {
      return await this.session(async (c) => {
        // The transaction as queries, each one or more statements. MariaDB leaves SERVER_MORE_RESULTS_EXISTS out of
        // the reply to a BINLOG statement with row events, so a client stops reading there while the server goes on
        // with the statements after it: a query must end with such a statement (the server's 10.11 behaviour, seen
        // in mysql-row-events.test.ts). Each query's replies are counted against its statements all the same.
        const queries: string[][] = [['START TRANSACTION']];
        const add = (sql: string): void => { queries[queries.length - 1]!.push(sql); };
        for (const [lane, cp] of expected) add(c.format(GUARDED_CHECKPOINT_SQL, [this.jobId, lane, sequence, cp]));
        const literal = { format: (text: string, values: unknown[]) => c.format(text, values), escape: (value: unknown) => c.escape(value) };
        const upserts = steps.filter((step): step is Extract<Step, { kind: 'upsert' }> => step.kind === 'upsert');
        const select = async (sql: string, params: unknown[]) => (await c.query<mysql.RowDataPacket[]>(sql, params))[0] as Record<string, unknown>[];
        if (upserts.length) await this.binlogRows.prepare(select, upserts.map((step) => ({ dest: destTable(step.ref, this.opts.rename), rows: step.rows })));
        const binlogTables: TableRef[] = [];
        let sentRows = 0;
        let chars = 0;
        for (const step of steps) {
          let rest: Step = step;
          if (step.kind === 'upsert') {
            const dest = destTable(step.ref, this.opts.rename);
            const split = this.binlogRows.split(dest, step.columns, step.key, step.rows);
            if (split.statement !== undefined) {
              if (binlogTables.length === 0) add(this.binlogRows.formatDescription);
              binlogTables.push(dest);
              sentRows += split.sent ?? 0;
              chars += split.statement.length;
              add(split.statement);
              queries.push([]);
              rest = { ...step, rows: split.rest };
            }
          }
          if ((rest.kind === 'upsert' || rest.kind === 'insert') && rest.rows.length === 0) continue;
          for (const [one] of this.statements(rest, literal)) {
            chars += one.length;
            add(one);
          }
        }
        add('COMMIT');
        if (chars > MAX_STATEMENT_BYTES) return false;
        let desync = false;
        try {
          for (const q of queries) {
            const [res] = await c.query(q.join(';\n'));
            if (q.length > 1 && (!Array.isArray(res) || res.length !== q.length)) {
              desync = true;
              throw new FatalError(`${q.length} statements sent, ${Array.isArray(res) ? res.length : 1} replies read`);
            }
          }
          this.atOnce.committed++;
          if (binlogTables.length) this.binlogRows.committed(sentRows, binlogTables.length);
          return true;
        } catch (err) {
          // Replies left unread would be taken for the next query's: the connection goes (the server rolls back).
          if (desync) c.destroy();
          else await c.query('ROLLBACK').catch(() => c.destroy());
          this.atOnce.fellBack++;
          const why = binlogTables.length ? this.binlogRows.failed(err, binlogTables) : undefined;
          if (why) this.logger.info({ tables: binlogTables.map((t) => `${t.schema}.${t.table}`) }, why);
          this.logger.debug({ lanes: [...expected.keys()], err: (err as Error).message }, 'batch sent at once failed; applying it the ordinary way');
          return false;
        }
      });
    } catch {
      // A value that cannot be converted, or no connection: the ordinary path says why.
      return false;
    }
  }

  /** Lane transactions sent at once (applyAtOnce): committed so, and failed there and applied the ordinary way. */
  readonly atOnce = { committed: 0, fellBack: 0 };

  /** Rows sent as row events, and batches with row events the server failed (mysql-binlog-rows.ts). */
  get rowEvents(): { rows: number; statements: number; failed: number; lastError?: string; disabled?: string } {
    return { ...this.binlogRows.stats, ...(this.binlogRows.disabled ? { disabled: this.binlogRows.disabled } : {}) };
  }

  protected conflictCode(err: unknown): string | undefined {
    const code = (err as { code?: string }).code;
    return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' ? code : undefined;
  }

  protected async session<T>(fn: (c: Conn) => Promise<T>): Promise<T> {
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

  protected endPool(): Promise<void> {
    return this.pool.end();
  }

  protected setUpMeta(): Promise<void> {
    return this.session(async (c) => {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
      const version = String(rows[0]?.v ?? '');
      this.caps = capsOf(version);
      this.binlogRows = new BinlogRows(this.mysqlOpts.rowEvents !== false && /mariadb/i.test(version));
      await this.binlogRows.setUp(async (sql, params) => (await c.query<mysql.RowDataPacket[]>(sql, params))[0] as Record<string, unknown>[]);
      for (const sql of META_DDL) await c.query(sql);
      const [has] = await c.query<mysql.RowDataPacket[]>(HAS_COVERS_SQL);
      if (!has.length) await c.query(ADD_COVERS_SQL);
    });
  }

  // ------------------------------------------------------------ rows

  /** Converted per statement in runStep (mysql2 escapes client-side). */
  protected prepareRows(_ref: TableRef, _columns: ColumnType[], rows: Row[]): Row[] {
    return rows;
  }

  protected async loadRows(c: Conn, ref: TableRef, table: TableInfo, rows: Row[]): Promise<void> {
    if (table.key.length === 0) await this.runStep(c, { kind: 'insert', ref, columns: table.columns, rows });
    else await this.runStep(c, { kind: 'upsert', ref, columns: table.columns, key: table.key, rows });
  }

  // ------------------------------------------------------------ DDL and steps

  /** CREATE (database and table) or ADD the missing columns, under a named lock. DDL commits implicitly. */
  protected async ensureTableOn(c: Conn, src: TableRef, columns: ColumnType[], key: string[], drops: string[] = [], renames: [string, string][] = [], retypes: string[] = []): Promise<void> {
    const ref = destTable(src, this.opts.rename);
    this.binlogRows.forgetShapes();
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

  protected async applyDdl(c: Conn, e: ChangeEvent): Promise<void> {
    this.binlogRows.forgetShapes();
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

  protected async runStep(c: Conn, step: Step): Promise<void> {
    if (step.kind === 'ddl') {
      // Only TRUNCATE reaches here (applyBatch runs other DDL outside transactions).
      await c.query(this.ledger.emptyTable(destTable({ schema: step.event.schema, table: step.event.table }, this.opts.rename)));
      return;
    }
    if (step.kind === 'delete-one') {
      const dest = destTable(step.ref, this.opts.rename);
      const sites = mysqlSites(step.ref, step.columns, [], true);
      const [res] = await c.query<mysql.ResultSetHeader>(deleteOneSql(dest, step.columns), mysqlParams([step.row], sites, this.caps));
      if (res.affectedRows === 0) this.logger.warn({ table: `${dest.schema}.${dest.table}` }, 'keyless delete/update matched no row');
      return;
    }
    for (const [text, params] of this.statements(step)) await c.query(text, params);
    if (step.kind === 'upsert' || step.kind === 'insert') {
      const { dest, key, sites } = this.stepSites(step);
      for (const row of this.invalidEnumRows(step.rows, step.columns)) await this.writeInvalidEnumRow(c, dest, step.columns, key, row, sites);
    }
  }

  /** Where a step's values go: its destination table, key and value sites. */
  private stepSites(step: Exclude<Step, { kind: 'ddl' }>): { dest: TableRef; key: string[]; hashed: boolean; sites: MysqlSite[] } {
    const dest = destTable(step.ref, this.opts.rename);
    const key = step.kind === 'upsert' || step.kind === 'delete' ? step.key : [];
    // A hashed key's columns keep their full width (no 768-character key text): see mysqlHashedKey.
    const hashed = key.length > 0 && mysqlHashedKey(step.columns.filter((c) => key.includes(c.name)), this.caps);
    return { dest, key, hashed, sites: mysqlSites(step.ref, step.columns, key, !hashed) };
  }

  private invalidEnumRows(rows: Row[], columns: ColumnType[]): Row[] {
    if (!this.caps.invalidEnum) return [];
    const enums = columns.filter((col) => col.kind === 'enum');
    return enums.length ? rows.filter((r) => enums.some((col) => isInvalidEnum(r[col.name], col))) : [];
  }

  /**
   * The statements (text with `?` and its values) of an insert, upsert or delete step, rows holding an invalid ENUM
   * value left out (runStep writes those one by one: writeInvalidEnumRow). With `literal`, the texts hold their
   * values (and the value lists are empty).
   */
  private statements(step: Step, literal?: { format: (sql: string, values: unknown[]) => string; escape: (value: unknown) => string }): [string, unknown[]][] {
    if (step.kind === 'ddl' || step.kind === 'delete-one') throw new FatalError(`no statements for a ${step.kind} step`);
    const { dest, hashed, sites } = this.stepSites(step);
    const out: [string, unknown[]][] = [];
    if (step.kind === 'delete') {
      for (const part of statementRows(step.keys, this.rowsPerStatement)) {
        const sql = deleteKeysSql(dest, step.columns, part.length, hashed);
        const params = mysqlParams(part, sites, this.caps);
        out.push(literal ? [literal.format(sql, params), []] : [sql, params]);
      }
      return out;
    }
    const invalid = this.invalidEnumRows(step.rows, step.columns);
    const rows = invalid.length ? step.rows.filter((r) => !invalid.includes(r)) : step.rows;
    const key = step.kind === 'upsert' ? step.key : undefined;
    for (const part of statementRows(rows, this.rowsPerStatement)) {
      out.push(literal
        ? [insertSql(dest, step.columns, part.length, key, literalTuples(part, sites, this.caps, literal.escape)), []]
        : [insertSql(dest, step.columns, part.length, key), mysqlParams(part, sites, this.caps)]);
    }
    return out;
  }

  /**
   * A row holding MariaDB's invalid-ENUM value (index 0, '' in the feed): see
   * setInvalidEnumSql. When such a value is part of the key the row cannot
   * be written with NULL first, so that one upsert runs with strict mode off.
   */
  private async writeInvalidEnumRow(c: Conn, dest: TableRef, columns: ColumnType[], key: string[], row: Row, sites: MysqlSite[]): Promise<void> {
    const enumCols = columns.filter((col) => isInvalidEnum(row[col.name], col)).map((col) => col.name);
    const zero: RawSql = { toSqlString: () => '0' };
    if (enumCols.some((n) => key.includes(n))) {
      const params = mysqlParams([row], sites, this.caps).map((p, i) => (enumCols.includes(columns[i]!.name) ? zero : p));
      await c.query(relaxedSql(insertSql(dest, columns, 1, key)), params);
      return;
    }
    const nulled: Row = { ...row };
    for (const n of enumCols) nulled[n] = null;
    const params = mysqlParams([nulled], sites, this.caps);
    await c.query(insertSql(dest, columns, 1, key.length ? key : undefined), params);
    const match = key.length ? columns.filter((col) => key.includes(col.name)) : columns;
    const matchParams = match.filter((col) => !enumCols.includes(col.name)).map((col) => params[columns.indexOf(col)]);
    await c.query(setInvalidEnumSql(dest, enumCols, match, key.length > 0), matchParams);
  }
}

/**
 * mysql2's query formatting, except that a query without values is sent as it is. mysql2 scans every query's
 * text for placeholders even when there are no values to put in (and then leaves any `?` as it is); applyAtOnce's
 * query carries a whole batch as literals (up to MAX_STATEMENT_BYTES), and that scan was about 5% of the
 * process in the MariaDB -> MariaDB apply profile (issue 12).
 */
function literalOrFormat(sql: string, values: unknown, timezone?: string): string {
  if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return sql;
  return mysql.format(sql, values as never, false, timezone as never);
}

function capsOf(version: string): MysqlCaps {
  const m = /^(\d+)\.(\d+)/.exec(version);
  const [maj, min] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (/mariadb/i.test(version)) return { ...MARIADB_CAPS, uuidType: maj > 10 || (maj === 10 && min >= 7), longUnique: maj > 10 || (maj === 10 && min >= 4) };
  return { uuidType: false, textCollation: 'CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin', invalidEnum: false, longUnique: false };
}
