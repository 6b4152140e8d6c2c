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
