import type { ChangeEvent, Row } from '../change-event.ts';
import type { RenameMap } from '../connection-config.ts';
import type { TableInfo } from '../table-info.ts';

export interface ApplierOptions {
  jobId: string;
  rename?: RenameMap;
}

/**
 * Writes to a destination. Every write carries its checkpoint and both
 * commit in one destination transaction, so a replay after a crash neither
 * duplicates nor loses (rows already covered by a checkpoint are skipped by
 * the caller, and upserts/deletes are idempotent for the rest).
 */
export interface Applier {
  /** Create the destination table (translated types) if missing; add missing columns. */
  ensureTable(table: TableInfo): Promise<void>;
  /** Bulk-load snapshot rows (upsert or COPY) and mark `chunkId` done, in one transaction. */
  loadChunk(table: TableInfo, rows: Row[], chunkId: string, final: boolean): Promise<void>;
  /** Whether a snapshot chunk already committed. */
  isChunkDone(chunkId: string): Promise<boolean>;
  /** Apply a batch of changes for one lane and store `sequence` as that lane's checkpoint, in one transaction. */
  applyBatch(events: ChangeEvent[], lane: number, sequence: string): Promise<void>;
  /** Last sequence applied by a lane, or null. */
  readCheckpoint(lane: number): Promise<string | null>;
  close(): Promise<void>;
}

/**
 * Tables a batch writes rows to that this applier has not made sure of yet.
 * A job without a snapshot (or a table that appears later) has no planned
 * table at the destination, so the first rows of a table create it from the
 * event's columns and key (translated types), as the snapshot planner does.
 * Marks them in `seen`; the caller unmarks on failure.
 */
export function unseenTables(events: ChangeEvent[], seen: Set<string>): TableInfo[] {
  const out: TableInfo[] = [];
  for (const e of events) {
    if (e.op === 'ddl' || e.columns.length === 0) continue;
    const id = `${e.schema}\u0000${e.table}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ schema: e.schema, table: e.table, columns: e.columns, key: e.key, estimatedRows: 0 });
  }
  return out;
}

export function unsee(tables: TableInfo[], seen: Set<string>): void {
  for (const t of tables) seen.delete(`${t.schema}\u0000${t.table}`);
}
