/**
 * What a MariaDB/MySQL source lacks for binlog capture: server settings and
 * the connecting user's privileges, each named the way an operator fixes it.
 */
import type mysql from 'mysql2/promise';
import type { DbConnectionConfig } from '../connection-config.ts';
import { FatalError } from '../errors.ts';
import { openMysql, serverInfo, type ServerInfo } from './mysql-connection.ts';

type Queryable = Pick<mysql.Connection, 'query'>;

/** Names used in `missing`; stable so callers and tests can match them. */
export enum CaptureRequirement {
  LogBin = 'log_bin',
  RowFormat = 'binlog_format=ROW',
  FullRowImage = 'binlog_row_image=FULL',
  ServerId = 'server_id',
  GtidStrictMode = 'gtid_strict_mode=ON',
  GtidMode = 'gtid_mode=ON',
  ReplicationSlave = 'REPLICATION SLAVE',
  BinlogMonitor = 'BINLOG MONITOR',
  ReplicationClient = 'REPLICATION CLIENT',
  Select = 'SELECT',
}

export interface MysqlCaptureCheck {
  ok: boolean;
  missing: string[];
  details: Record<string, string>;
}

async function variables(db: Queryable, names: string[]): Promise<Record<string, string>> {
  const [rows] = await db.query(
    `SELECT VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN (?)`,
    [names.map((n) => n.toUpperCase())],
  ).catch(async () => db.query(`SHOW GLOBAL VARIABLES WHERE Variable_name IN (?)`, [names]));
  const out: Record<string, string> = {};
  for (const r of rows as Record<string, unknown>[]) {
    const name = String(r.n ?? r.Variable_name).toLowerCase();
    out[name] = String(r.v ?? r.Value ?? '');
  }
  return out;
}

/** Settings the binlog itself needs (no privileges): log_bin, ROW format, FULL row image. */
function binlogSettingsMissing(v: Record<string, string>): string[] {
  const missing: string[] = [];
  if (!/^(ON|1)$/i.test(v.log_bin ?? '')) missing.push(CaptureRequirement.LogBin);
  if ((v.binlog_format ?? '').toUpperCase() !== 'ROW') missing.push(CaptureRequirement.RowFormat);
  if ((v.binlog_row_image ?? 'FULL').toUpperCase() !== 'FULL') missing.push(CaptureRequirement.FullRowImage);
  return missing;
}

/**
 * Throws a FatalError naming every binlog setting capture needs but the
 * server lacks. Returns binlog_row_metadata ('' where the server has none),
 * which is recommended FULL but not required.
 */
export async function assertBinlogSettings(db: Queryable): Promise<string> {
  const v = await variables(db, ['log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata']);
  const missing = binlogSettingsMissing(v);
  if (missing.length > 0) {
    throw new FatalError(`source cannot be captured: needs ${missing.join(', ')} (now log_bin=${v.log_bin ?? '?'}, binlog_format=${v.binlog_format ?? '?'}, binlog_row_image=${v.binlog_row_image ?? '?'})`);
  }
  return (v.binlog_row_metadata ?? '').toUpperCase();
}

/** Global privileges (and the schemas with SELECT) from SHOW GRANTS output. */
export function parseGrants(lines: string[]): { global: Set<string>; selectSchemas: Set<string> } {
  const global = new Set<string>();
  const selectSchemas = new Set<string>();
  for (const line of lines) {
    const m = /^GRANT\s+(.+?)\s+ON\s+(\S+)\s+TO\s/i.exec(line.trim());
    if (!m) continue;
    const privs = m[1]!.split(',').map((p) => p.trim().toUpperCase().replace(/\s*\(.*\)$/, ''));
    const on = m[2]!;
    if (on === '*.*') {
      for (const p of privs) global.add(p === 'ALL' ? 'ALL PRIVILEGES' : p);
    } else if (privs.some((p) => p === 'SELECT' || p === 'ALL PRIVILEGES' || p === 'ALL')) {
      const schema = /^`?((?:[^`]|``)*)`?\./.exec(on)?.[1] ?? on;
      selectSchemas.add(schema.replace(/``/g, '`'));
    }
  }
  return { global, selectSchemas };
}

/** MariaDB 10.5 split REPLICATION CLIENT into BINLOG MONITOR (and shows it under that name). */
function monitorPrivilege(info: ServerInfo): CaptureRequirement {
  if (!info.isMariaDb) return CaptureRequirement.ReplicationClient;
  const [major = 0, minor = 0] = info.version.split(/[.-]/).map(Number);
  return major > 10 || (major === 10 && minor >= 5) ? CaptureRequirement.BinlogMonitor : CaptureRequirement.ReplicationClient;
}

/**
 * Reports exactly what capture lacks on `conn`. An unreachable server or a
 * rejected login throws a classified ReplicationError (never quoting the password).
 */
export async function checkMysqlCapture(conn: DbConnectionConfig): Promise<MysqlCaptureCheck> {
  const db = await openMysql(conn);
  try {
    const info = await serverInfo(db);
    const names = ['log_bin', 'binlog_format', 'binlog_row_image', 'server_id', 'binlog_row_metadata'];
    names.push(...(info.isMariaDb ? ['gtid_binlog_pos', 'gtid_strict_mode', 'gtid_domain_id'] : ['gtid_mode']));
    const v = await variables(db, names);
    const missing = binlogSettingsMissing(v);
    if (!v.server_id || v.server_id === '0') missing.push(CaptureRequirement.ServerId);
    if (info.isMariaDb) {
      if (!/^(ON|1)$/i.test(v.gtid_strict_mode ?? '')) missing.push(CaptureRequirement.GtidStrictMode);
    } else if ((v.gtid_mode ?? 'OFF').toUpperCase() !== 'ON') {
      missing.push(CaptureRequirement.GtidMode);
    }

    const [grantRows] = await db.query('SHOW GRANTS');
    const lines = (grantRows as Record<string, string>[]).map((r) => String(Object.values(r)[0] ?? ''));
    const grants = parseGrants(lines);
    const has = (p: string) => grants.global.has(p) || grants.global.has('ALL PRIVILEGES');
    const monitor = monitorPrivilege(info);
    if (!has(CaptureRequirement.ReplicationSlave)) missing.push(CaptureRequirement.ReplicationSlave);
    // Older servers and MySQL know only REPLICATION CLIENT; SUPER covered it before 10.5.
    if (!has(monitor) && !(monitor === CaptureRequirement.ReplicationClient && has('SUPER'))) missing.push(monitor);
    const selectOk = has('SELECT') || (conn.database !== undefined && grants.selectSchemas.has(conn.database));
    if (!selectOk) missing.push(CaptureRequirement.Select);

    const details: Record<string, string> = { version: info.version, flavor: info.isMariaDb ? 'mariadb' : 'mysql' };
    for (const n of names) details[n] = v[n] ?? '';
    if ((v.binlog_row_metadata ?? '').toUpperCase() !== 'FULL') {
      // Recommended, not required: without it a column rename fails the job.
      details.binlog_row_metadata_note = 'binlog_row_metadata=FULL is needed to replicate column renames (RENAME COLUMN, CHANGE to another name) '
        + 'and to replay the binlog across an ALTER TABLE; without it such a rename fails the job quoting the statement';
    }
    details.global_privileges = [...grants.global].sort().join(', ');
    if (grants.selectSchemas.size > 0) details.select_schemas = [...grants.selectSchemas].sort().join(', ');
    return { ok: missing.length === 0, missing, details };
  } finally {
    await db.end().catch(() => db.destroy());
  }
}
