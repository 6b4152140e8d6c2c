/**
 * How much log a source keeps for a job's capture, in bytes, read on demand
 * (job.metrics.retainedLogBytes, tributary_job_retained_log_bytes):
 * PostgreSQL, the WAL its replication slot retains (current WAL position minus
 * the slot's restart_lsn); MariaDB, the binary log after the capture's last
 * position (the distance it still has to read; a MariaDB reader holds no log
 * back). null when unknown: no slot yet, or the position is not among the
 * server's binary logs.
 */
import pg from 'pg';
import type { SourcePosition } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import { pgClientConfig } from './pg-connection.ts';
import { openMysql } from './mysql-connection.ts';
import { pgCaptureName } from './pg-logical.capture.ts';

export async function retainedLogBytes(conn: DbConnectionConfig, jobId: string, at?: SourcePosition): Promise<number | null> {
  if (conn.kind === 'postgres') {
    const c = new pg.Client(pgClientConfig(conn));
    await c.connect();
    try {
      const r = await c.query<{ b: string | null }>(
        'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS b FROM pg_replication_slots WHERE slot_name = $1', [pgCaptureName(jobId)]);
      const b = r.rows[0]?.b;
      return b === null || b === undefined ? null : Number(b);
    } finally { await c.end().catch(() => undefined); }
  }
  if (at?.kind !== 'mysql' || !at.file) return null;
  const db = await openMysql(conn);
  try {
    const [rows] = await db.query('SHOW BINARY LOGS');
    let total = 0; let seen = false;
    for (const r of rows as { Log_name: string; File_size: number | string }[]) {
      if (r.Log_name === at.file) { seen = true; total += Math.max(0, Number(r.File_size) - at.pos); } else if (seen) total += Number(r.File_size);
    }
    return seen ? total : null;
  } finally { await db.end().catch(() => undefined); }
}
