/**
 * What the snapshot copy of a keyless table already holds, in terms of the
 * stream's changes (docs/consistency.md, "Keyless tables").
 *
 * A keyless table cannot be upserted, so a change that is both in its copy
 * and in the replayed stream (committed between the stream's start position
 * and the moment the chunk was read) would be applied twice. The chunk's
 * reader records the point its read was consistent with, the applier stores
 * it with the chunk's done marker, and apply skips that table's changes the
 * copy already holds:
 *
 * - `binlog <sequence>` (MariaDB): binlog_snapshot_file/position of the
 *   chunk's START TRANSACTION WITH CONSISTENT SNAPSHOT. Binlog order is
 *   commit order, so the copy holds exactly the transactions that start
 *   below that position, i.e. whose sequences are below `<sequence>`.
 * - `pgsnap <xmin>:<xmax>:<xip,...>` (PostgreSQL): the chunk transaction's
 *   snapshot (txid_current_snapshot()). The copy holds exactly the
 *   transactions visible in it. Usually that is the slot's exported snapshot
 *   and nothing streamed is visible in it; when the export could not be
 *   imported (the capture restarted during the snapshot), the chunk reads a
 *   fresh snapshot and this is what keeps the overlap from doubling.
 *
 * MySQL has no binlog_snapshot_* status: no cover, and a keyless table
 * written during its snapshot can get duplicates there (documented).
 */
import type { ChangeEvent } from '../change-event.ts';
import { compareSequences, sequenceFromBinlog } from '../sequence.ts';

export function binlogCover(file: string, pos: number): string {
  return `binlog ${sequenceFromBinlog(file, pos, 0)}`;
}

export function pgSnapshotCover(txidSnapshot: string): string {
  if (!/^\d+:\d+:[\d,]*$/.test(txidSnapshot)) throw new Error(`unexpected txid snapshot "${txidSnapshot}"`);
  return `pgsnap ${txidSnapshot}`;
}

export interface Cover { holds(e: ChangeEvent): boolean }

const TWO_32 = 1n << 32n;
const TWO_31 = 1n << 31n;

/** Parses a stored cover; null (no cover) holds nothing. */
export function parseCover(text: string | null | undefined): Cover | null {
  if (!text) return null;
  const [kind, value] = text.split(' ', 2) as [string, string | undefined];
  if (kind === 'binlog' && value) return { holds: (e) => compareSequences(e.sequence, value) < 0 };
  if (kind === 'pgsnap' && value) {
    const [xmin, xmax, xip] = value.split(':') as [string, string, string];
    const lo = BigInt(xmin); const hi = BigInt(xmax);
    const inProgress = new Set((xip ?? '').split(',').filter(Boolean).map((x) => BigInt(x)));
    return {
      holds: (e) => {
        if (!/^\d+$/.test(e.txid) || e.txid === '0') return false;
        // Events carry the 32-bit xid: widen it to the nearest 64-bit xid around xmax (within 2^31 either way,
        // as PostgreSQL's own modular xid comparison does).
        const behind = ((hi % TWO_32) - BigInt(e.txid) + TWO_32) % TWO_32;
        const full = behind <= TWO_31 ? hi - behind : hi + (TWO_32 - behind);
        return full < lo || (full < hi && !inProgress.has(full));
      },
    };
  }
  throw new Error(`unknown snapshot cover "${text}"`);
}

/** The stream changes of a keyless table a cover can hold: rows, and TRUNCATE (a DDL that changes rows). */
export function coverable(e: ChangeEvent, isTruncate: (ddl: string) => boolean): boolean {
  if (e.key.length > 0) return false;
  return e.op !== 'ddl' || isTruncate(e.ddl ?? '');
}

/** Chunk ids as the snapshot planner names them: `<schema>.<table>#<index>` (source names). */
export function snapshotChunkId(schema: string, table: string, index: number): string {
  return `${schema}.${table}#${index}`;
}
