/**
 * What a PostgreSQL source lacks for logical-replication capture, reported
 * item by item so an operator can fix exactly that. Connection failures are
 * thrown as classified ReplicationErrors with a message naming the target
 * (user@host:port/db), never the password.
 */
import pg from 'pg';
import type { DbConnectionConfig } from '../connection-config.ts';
import { classify, FatalError, RetriableError } from '../errors.ts';
import { describePgTarget, pgClientConfig } from './pg-connection.ts';

/** Stable identifiers of what can be missing. */
export enum PgCaptureRequirement {
  WalLevel = 'wal_level=logical',
  Replication = 'REPLICATION attribute',
  FreeSlot = 'free replication slot',
  FreeWalSender = 'free wal sender',
}

export interface PgCaptureCheck {
  ok: boolean;
  missing: string[];
  details: Record<string, string>;
}

interface CheckRow {
  wal_level: string;
  rolreplication: boolean;
  rolsuper: boolean;
  max_slots: string;
  used_slots: string;
  max_senders: string;
  used_senders: string;
  version: string;
}

export async function checkPgCapture(conn: DbConnectionConfig): Promise<PgCaptureCheck> {
  const target = describePgTarget(conn);
  const client = new pg.Client(pgClientConfig(conn, { connectTimeoutMs: 5_000 }));
  // A late socket error after a failed connect must not become an unhandled 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw connectError(err, target);
  }
  try {
    const res = await client.query<CheckRow>(
      `SELECT current_setting('wal_level') AS wal_level,
              r.rolreplication, r.rolsuper,
              current_setting('max_replication_slots') AS max_slots,
              (SELECT count(*) FROM pg_replication_slots) AS used_slots,
              current_setting('max_wal_senders') AS max_senders,
              (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender') AS used_senders,
              current_setting('server_version') AS version
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const r = res.rows[0]!;
    const freeSlots = Number(r.max_slots) - Number(r.used_slots);
    const freeSenders = Number(r.max_senders) - Number(r.used_senders);
    const missing: string[] = [];
    if (r.wal_level !== 'logical') missing.push(PgCaptureRequirement.WalLevel);
    if (!r.rolreplication && !r.rolsuper) missing.push(PgCaptureRequirement.Replication);
    if (freeSlots < 1) missing.push(PgCaptureRequirement.FreeSlot);
    if (freeSenders < 1) missing.push(PgCaptureRequirement.FreeWalSender);
    const details: Record<string, string> = {
      server_version: r.version,
      wal_level: r.wal_level,
      user: conn.user,
      replication: r.rolreplication ? 'yes' : 'no',
      superuser: r.rolsuper ? 'yes' : 'no',
      replication_slots: `${r.used_slots} used of ${r.max_slots} (${freeSlots} free)`,
      wal_senders: `${r.used_senders} used of ${r.max_senders} (${freeSenders} free)`,
    };
    if (missing.includes(PgCaptureRequirement.WalLevel)) details.fix_wal_level = 'set wal_level = logical in postgresql.conf and restart the server';
    if (missing.includes(PgCaptureRequirement.Replication)) details.fix_replication = `ALTER ROLE ${conn.user} REPLICATION (as a superuser)`;
    if (missing.includes(PgCaptureRequirement.FreeSlot)) details.fix_slots = 'raise max_replication_slots or drop unused slots';
    if (missing.includes(PgCaptureRequirement.FreeWalSender)) details.fix_wal_senders = 'raise max_wal_senders';
    return { ok: missing.length === 0, missing, details };
  } catch (err) {
    throw classify(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function connectError(err: unknown, target: string): Error {
  const e = err as { code?: string; message?: string };
  const why = e?.message ?? String(err);
  if (e?.code === '28P01' || e?.code === '28000') return new FatalError(`authentication failed for ${target}: ${why}`, { cause: err });
  if (e?.code === '3D000') return new FatalError(`database does not exist on ${target}: ${why}`, { cause: err });
  const classified = classify(err);
  const message = `cannot connect to PostgreSQL at ${target}: ${why}`;
  return classified.retriable ? new RetriableError(message, { cause: err }) : new FatalError(message, { cause: err });
}
