/**
 * The changeserver `snapshot` parameter: a PostgreSQL snapshot as printed by
 * `txid_current_snapshot()` / `pg_current_snapshot()`, "xmin:xmax:xip1,xip2,...".
 * A reader that loaded data under that snapshot must not receive changes it
 * already saw, so changes whose transaction is VISIBLE in the snapshot are
 * hidden from it.
 *
 * Visibility (PostgreSQL's rule): txid < xmin -> committed before the
 * snapshot, visible; txid >= xmax -> not yet started, invisible; in between,
 * visible unless listed in xip (in progress at snapshot time).
 *
 * Applies to PostgreSQL feeds only. A MariaDB event's txid is a GTID seq_no or
 * a binlog-derived number, unrelated to PostgreSQL xids: comparing it with a
 * PostgreSQL snapshot would hide arbitrary changes, i.e. lose data silently.
 * So MariaDB events are never hidden; filterBySnapshot reports that it met
 * some (`ignoredNonPostgres`) so the API layer can warn the caller.
 */
import type { ChangeEvent } from '../change-event.ts';
import { FeedParameterError } from './feed-errors.ts';

export interface PgSnapshot {
  xmin: bigint;
  xmax: bigint;
  /** Transactions in progress when the snapshot was taken. */
  xip: ReadonlySet<bigint>;
}

const TXID = '(?:0|[1-9][0-9]{0,19})';
const SNAPSHOT_RE = new RegExp(`^(${TXID}):(${TXID}):((?:${TXID})(?:,${TXID})*)?$`);
const MAX_TXID = (1n << 64n) - 1n;
const XID_SPAN = 1n << 32n;

export function parseSnapshot(text: string): PgSnapshot {
  const bad = (reason: string): FeedParameterError => new FeedParameterError('snapshot', text, reason);
  if (typeof text !== 'string') throw bad('expected "xmin:xmax:xip1,xip2,..."');
  const m = SNAPSHOT_RE.exec(text);
  if (!m) throw bad('expected "xmin:xmax:xip1,xip2,..." with decimal transaction ids');
  const xmin = BigInt(m[1]!);
  const xmax = BigInt(m[2]!);
  if (xmax > MAX_TXID) throw bad('transaction id out of range');
  if (xmin > xmax) throw bad('xmin is above xmax');
  const xip = new Set<bigint>();
  for (const part of m[3] ? m[3].split(',') : []) {
    const x = BigInt(part);
    if (x < xmin || x >= xmax) throw bad(`in-progress id ${part} is outside [xmin, xmax)`);
    xip.add(x);
  }
  return { xmin, xmax, xip };
}

/**
 * Whether `txid` is visible in `snap`. A 32-bit xid (what pgoutput sends)
 * is first widened to the 64-bit epoch-extended form the snapshot uses, by
 * taking the value nearest to xmax (PostgreSQL's own rule: a live xid lies
 * within 2^31 of the current one).
 */
export function isVisibleInSnapshot(txid: string | number | bigint, snap: PgSnapshot): boolean {
  const t = widenXid(BigInt(txid), snap.xmax);
  if (t < snap.xmin) return true;
  return t < snap.xmax && !snap.xip.has(t);
}

function widenXid(xid: bigint, xmax: bigint): bigint {
  if (xid >= XID_SPAN || xmax < XID_SPAN) return xid;
  let full = (xmax & ~(XID_SPAN - 1n)) | xid;
  const half = XID_SPAN / 2n;
  if (full - xmax > half) full -= XID_SPAN;
  else if (xmax - full > half) full += XID_SPAN;
  return full;
}

/** Whether a reader holding `snap` must not receive `event` (see the module comment for MariaDB). */
export function hiddenBySnapshot(event: ChangeEvent, snap: PgSnapshot): boolean {
  if (event.source !== 'postgres') return false;
  if (!/^[0-9]{1,20}$/.test(event.txid)) return false; // never hide what cannot be judged
  return isVisibleInSnapshot(event.txid, snap);
}

export function filterBySnapshot(events: ChangeEvent[], snap: PgSnapshot): { events: ChangeEvent[]; ignoredNonPostgres: boolean } {
  let ignoredNonPostgres = false;
  const kept = events.filter((e) => {
    if (e.source !== 'postgres') { ignoredNonPostgres = true; return true; }
    return !hiddenBySnapshot(e, snap);
  });
  return { events: kept, ignoredNonPostgres };
}
