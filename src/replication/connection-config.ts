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

/** Which tables a job covers. Empty `schemas` = everything the user can see (system schemas excluded). */
export interface TableFilter {
  schemas: { schema: string; tables?: string[] }[];
}

/** Rename mapping applied at the destination. */
export interface RenameMap {
  schemas?: Record<string, string>;
  /** key "schema.table" -> "schema.table" or "table" */
  tables?: Record<string, string>;
}

export function matchesFilter(filter: TableFilter | undefined, schema: string, table: string): boolean {
  if (!filter || filter.schemas.length === 0) return true;
  return filter.schemas.some((s) => s.schema === schema && (!s.tables || s.tables.length === 0 || s.tables.includes(table)));
}

export const SYSTEM_SCHEMAS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys', 'pg_catalog', 'pg_toast']);
