/** How the engine reaches a database. Secrets arrive decrypted here and must never be logged. */
export type DbKind = 'mysql' | 'postgres';

export interface TlsOptions {
  enabled: boolean;
  /** Verify the server certificate (default true when enabled). */
  rejectUnauthorized?: boolean;
  /** PEM CA bundle. */
  ca?: string;
}

export interface DbConnectionConfig {
  kind: DbKind;
  host: string;
  port: number;
  user: string;
  password: string;
  /** Database; for MariaDB optional (then the whole instance). */
  database?: string;
  tls?: TlsOptions;
}

// The table filter and rename map are part of the job model (domain); re-exported for the engine.
export { matchesFilter, type RenameMap, type TableFilter } from '../domain/table-filter.ts';

export const SYSTEM_SCHEMAS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys', 'pg_catalog', 'pg_toast']);
