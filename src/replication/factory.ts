/** The one place that picks capture and snapshot implementations for a connection. */
import type { CaptureOptions, CaptureSource } from './capture/capture-source.ts';
import { MysqlBinlogCapture } from './capture/mysql-binlog.capture.ts';
import { PgLogicalCapture } from './capture/pg-logical.capture.ts';
import { MysqlSnapshotReader } from './snapshot/mysql.snapshot.ts';
import { PgSnapshotReader } from './snapshot/pg.snapshot.ts';
import type { SnapshotReader } from './snapshot/snapshot-reader.ts';
import type { DbConnectionConfig } from './connection-config.ts';
import type { Logger } from './logger.ts';
import { checkMysqlCapture } from './capture/mysql-check.ts';
import { checkPgCapture } from './capture/pg-check.ts';

export { createApplier } from './apply/applier-factory.ts';
export { blockingRequirements, describeRequirements } from './capture/capture-requirements.ts';

export function createCapture(opts: CaptureOptions): CaptureSource {
  return opts.connection.kind === 'postgres' ? new PgLogicalCapture(opts) : new MysqlBinlogCapture(opts);
}

export function createSnapshotReader(connection: DbConnectionConfig, logger: Logger): SnapshotReader {
  return connection.kind === 'postgres' ? new PgSnapshotReader({ connection, logger }) : new MysqlSnapshotReader({ connection, logger });
}

export interface CaptureCheck { ok: boolean; missing: string[]; details: Record<string, string> }

export function checkCapture(connection: DbConnectionConfig): Promise<CaptureCheck> {
  return connection.kind === 'postgres' ? checkPgCapture(connection) : checkMysqlCapture(connection);
}
