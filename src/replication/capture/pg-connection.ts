/**
 * pg ClientConfig from Tributary's DbConnectionConfig, shared by the
 * pgoutput capture, the snapshot reader and the connection check.
 *
 * Every session is pinned to the same output settings, because capture and
 * snapshot both read PostgreSQL's *text* output and must produce identical
 * values for the same row: UTC time zone, ISO dates, hex bytea, shortest
 * exact floats. Logical decoding runs the type output functions inside the
 * walsender, so these startup options apply to the replication stream too.
 */
import type { ClientConfig } from 'pg';
import type { DbConnectionConfig } from '../connection-config.ts';
import { FatalError } from '../errors.ts';

/** Session settings that fix the text form of values. */
export const PG_SESSION_OPTIONS = [
  '-c TimeZone=UTC',
  '-c DateStyle=ISO,YMD',
  '-c IntervalStyle=postgres',
  '-c bytea_output=hex',
  '-c extra_float_digits=1',
].join(' ');

export const PG_APPLICATION_NAME = 'tributary';

/** Default database when the connection names none. */
export const PG_DEFAULT_DATABASE = 'postgres';

export interface PgClientConfigOptions {
  /** Open a logical replication connection (`replication: 'database'`). */
  replication?: boolean;
  /** Return every column as the server's raw text (no pg type parsing). */
  rawText?: boolean;
  /** Connect timeout in ms. Default 10000. */
  connectTimeoutMs?: number;
}

const rawTextParser = (value: string): string => value;

/** Type parser set that hands back the server text untouched, for every type. */
export const RAW_TEXT_TYPES = { getTypeParser: () => rawTextParser } as unknown as NonNullable<ClientConfig['types']>;

export function pgClientConfig(conn: DbConnectionConfig, opts: PgClientConfigOptions = {}): ClientConfig {
  if (conn.kind !== 'postgres') throw new FatalError(`connection kind ${conn.kind} is not postgres`);
  const config: ClientConfig & { replication?: 'database' } = {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database: conn.database || PG_DEFAULT_DATABASE,
    application_name: PG_APPLICATION_NAME,
    options: PG_SESSION_OPTIONS,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    keepAlive: true,
    ssl: conn.tls?.enabled
      ? { rejectUnauthorized: conn.tls.rejectUnauthorized ?? true, ...(conn.tls.ca ? { ca: conn.tls.ca } : {}) }
      : false,
  };
  if (opts.replication) config.replication = 'database';
  if (opts.rawText) config.types = RAW_TEXT_TYPES;
  return config;
}

/** "user@host:port/db" for messages and logs; never the password. */
export function describePgTarget(conn: DbConnectionConfig): string {
  return `${conn.user}@${conn.host}:${conn.port}/${conn.database || PG_DEFAULT_DATABASE}`;
}

/** Double-quote an identifier. */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** `"schema"."table"` */
export function quoteTable(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** Single-quoted SQL literal (for replication commands, which take no parameters). */
export function quoteLiteral(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}
