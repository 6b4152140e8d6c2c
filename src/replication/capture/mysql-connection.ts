/**
 * mysql2 connection options for a MariaDB/MySQL source, shared by the binlog
 * capture, the snapshot reader and the connection check so that every path
 * decodes values the same way (see mysql-values.ts).
 */
import type { ConnectionOptions } from 'mysql2';
import mysql from 'mysql2/promise';
import type { DbConnectionConfig } from '../connection-config.ts';
import { classify, FatalError, RetriableError, type ReplicationError } from '../errors.ts';

/** Default connect timeout; an unreachable host must fail fast, not hang a worker. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface MysqlOptionsExtra {
  /** Override the connect timeout (ms). Default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number;
  /** Use `conn.database` as the default schema. Default false: capture spans the instance. */
  useDatabase?: boolean;
  multipleStatements?: boolean;
}

/**
 * DOUBLE and FLOAT read from the text protocol with the engine's own
 * parser: mysql2 3.x (Packet.parseFloat) builds numbers of up to 17
 * characters digit by digit (`result * 10 + d`, then `/ 10^k`), which is off
 * in the last place for many values: 90.66666666666667 reads as
 * 90.66666666666669. Number() of the server's text is exact (the server
 * prints the shortest text that reads back as the same double).
 */
export const exactFloats: NonNullable<ConnectionOptions['typeCast']> = (field, next) => {
  if (field.type === 'DOUBLE' || field.type === 'FLOAT') {
    const s = field.string();
    return s === null ? null : Number(s);
  }
  return next();
};

/**
 * Options that keep full value fidelity: big integers and decimals as exact
 * strings, temporal values as the server's text (zero dates survive, no local
 * time zone applied), JSON as text, and the session in UTC so TIMESTAMP text
 * is UTC on both the binlog and the query path.
 */
export function mysqlConnectionOptions(conn: DbConnectionConfig, extra: MysqlOptionsExtra = {}): ConnectionOptions {
  if (conn.kind !== 'mysql') throw new FatalError(`connection kind "${conn.kind}" is not a MariaDB/MySQL connection`);
  const opts: ConnectionOptions = {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    charset: 'UTF8MB4_GENERAL_CI',
    connectTimeout: extra.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    dateStrings: true,
    jsonStrings: true,
    timezone: 'Z',
    typeCast: exactFloats,
    multipleStatements: extra.multipleStatements ?? false,
  };
  if (extra.useDatabase && conn.database) opts.database = conn.database;
  if (conn.tls?.enabled) {
    opts.ssl = { rejectUnauthorized: conn.tls.rejectUnauthorized ?? true, ...(conn.tls.ca ? { ca: conn.tls.ca } : {}) };
  }
  return opts;
}

/**
 * A classified error whose message names the server but never the password
 * (driver messages quote the user and host only; we add the address).
 */
export function connectionError(conn: DbConnectionConfig, err: unknown): ReplicationError {
  const base = classify(err);
  const e = err as { code?: string; message?: string };
  const what = `MariaDB/MySQL ${conn.user}@${conn.host}:${conn.port}`;
  const detail = (e?.message ?? String(err)).split(conn.password || '\u0000').join('***');
  const msg = `${what}: ${e?.code ? `${e.code}: ` : ''}${detail}`;
  return base.retriable ? new RetriableError(msg, { cause: err }) : new FatalError(msg, { cause: err });
}

/** Open a promise connection with the fidelity options and a UTC session. Errors are classified. */
export async function openMysql(conn: DbConnectionConfig, extra: MysqlOptionsExtra = {}): Promise<mysql.Connection> {
  let c: mysql.Connection;
  try {
    c = await mysql.createConnection(mysqlConnectionOptions(conn, extra));
  } catch (err) {
    throw connectionError(conn, err);
  }
  // A fatal socket error after connect must not crash the process when no query is pending.
  c.on('error', () => undefined);
  try {
    await c.query("SET time_zone = '+00:00'");
  } catch (err) {
    c.destroy();
    throw connectionError(conn, err);
  }
  return c;
}

type Queryable = Pick<mysql.Connection, 'query'>;

export interface ServerInfo {
  version: string;
  isMariaDb: boolean;
}

export async function serverInfo(db: Queryable): Promise<ServerInfo> {
  const [rows] = await db.query('SELECT VERSION() AS v');
  const version = String((rows as { v: string }[])[0]?.v ?? '');
  return { version, isMariaDb: /mariadb/i.test(version) };
}

/** File/pos of the current end of the binary log; undefined when binary logging is off. */
export async function binlogEnd(db: Queryable): Promise<{ file: string; pos: number } | undefined> {
  let rows: unknown;
  try {
    [rows] = await db.query('SHOW MASTER STATUS');
  } catch (err) {
    // MySQL 8.4 removed SHOW MASTER STATUS in favour of SHOW BINARY LOG STATUS.
    if ((err as { code?: string }).code !== 'ER_PARSE_ERROR') throw err;
    [rows] = await db.query('SHOW BINARY LOG STATUS');
  }
  const r = (rows as { File?: string; Position?: number | string }[])[0];
  if (!r?.File) return undefined;
  return { file: r.File, pos: Number(r.Position) };
}

/**
 * GTID state at a binlog file/pos. MariaDB computes it exactly with
 * BINLOG_GTID_POS(); MySQL has no equivalent, so there the executed set read
 * alongside is given (it may run slightly ahead of file/pos).
 */
export async function gtidAt(db: Queryable, info: ServerInfo, file: string, pos: number): Promise<string | undefined> {
  if (info.isMariaDb) {
    const [rows] = await db.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [file, pos]);
    const g = (rows as { g: string | null }[])[0]?.g;
    return g === null || g === undefined ? undefined : g;
  }
  try {
    const [rows] = await db.query('SELECT @@GLOBAL.gtid_executed AS g');
    const g = String((rows as { g: string | null }[])[0]?.g ?? '').replace(/\s/g, '');
    return g || undefined;
  } catch {
    return undefined;
  }
}
