/** The one place that picks an Applier for a destination connection. */
import type { DbConnectionConfig } from '../connection-config.ts';
import type { Applier, ApplierOptions } from './applier.ts';
import { MysqlApplier, type MysqlApplierOptions } from './mysql.applier.ts';
import { PgApplier, type PgApplierOptions } from './pg.applier.ts';

export type AnyApplierOptions = ApplierOptions & PgApplierOptions & MysqlApplierOptions;

export function createApplier(conn: DbConnectionConfig, opts: AnyApplierOptions): Applier {
  return conn.kind === 'postgres' ? new PgApplier(conn, opts) : new MysqlApplier(conn, opts);
}
