/**
 * Which of testConnection's findings stop capture from working, and how an
 * operator fixes each. createJob refuses a source with any of them (unless the
 * job is created paused), so a job never answers RUNNING only to fail at once.
 */
import { CaptureRequirement } from './mysql-check.ts';
import { PgCaptureRequirement } from './pg-check.ts';

const FIX: Record<string, string> = {
  [CaptureRequirement.LogBin]: 'start the server with log_bin (--log-bin) enabled',
  [CaptureRequirement.RowFormat]: 'SET GLOBAL binlog_format = ROW (and binlog_format=ROW in the server config)',
  [CaptureRequirement.FullRowImage]: 'SET GLOBAL binlog_row_image = FULL (and binlog_row_image=FULL in the server config)',
  [CaptureRequirement.ServerId]: 'set server_id to a non-zero value in the server config',
  [CaptureRequirement.GtidStrictMode]: 'SET GLOBAL gtid_strict_mode = ON (needed to start from a GTID)',
  [CaptureRequirement.GtidMode]: 'enable gtid_mode=ON and enforce_gtid_consistency=ON (needed to start from a GTID)',
  [CaptureRequirement.ReplicationSlave]: 'GRANT REPLICATION SLAVE ON *.* TO <user>',
  [CaptureRequirement.BinlogMonitor]: 'GRANT BINLOG MONITOR ON *.* TO <user>',
  [CaptureRequirement.ReplicationClient]: 'GRANT REPLICATION CLIENT ON *.* TO <user>',
  [CaptureRequirement.Select]: 'GRANT SELECT on the captured schemas TO <user>',
  [PgCaptureRequirement.WalLevel]: 'set wal_level = logical in postgresql.conf and restart the server',
  [PgCaptureRequirement.Replication]: 'ALTER ROLE <user> REPLICATION (as a superuser)',
  [PgCaptureRequirement.FreeSlot]: 'raise max_replication_slots or drop unused replication slots',
  [PgCaptureRequirement.FreeWalSender]: 'raise max_wal_senders',
};

/** GTID settings matter only to a job that starts from a GTID; capture by file and position works without them. */
const GTID_ONLY = new Set<string>([CaptureRequirement.GtidStrictMode, CaptureRequirement.GtidMode]);

/** The findings that would make a job with this start fail. */
export function blockingRequirements(missing: string[], startsFromGtid: boolean): string[] {
  return missing.filter((m) => startsFromGtid || !GTID_ONLY.has(m));
}

/** "log_bin (start the server with ...); binlog_format=ROW (SET GLOBAL ...)", naming the connection's user in the fixes. */
export function describeRequirements(missing: string[], user: string): string {
  return missing.map((m) => `${m} (${(FIX[m] ?? 'see testConnection').replace('<user>', user)})`).join('; ');
}
