import type { ChangeEvent, ColumnType, Row } from '../change-event.ts';
import { coverable, parseCover, snapshotChunkId, type Cover } from '../snapshot/snapshot-cover.ts';
import { classifyDdl, tableRenameOf } from './ddl.ts';
import type { Logger } from '../logger.ts';
import type { RenameMap } from '../connection-config.ts';
import type { TableInfo } from '../table-info.ts';
import { RetriableError } from '../errors.ts';
import { compareSequences } from '../sequence.ts';

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
  /**
   * Bulk-load snapshot rows (upsert or COPY) and mark `chunkId` done, in one transaction.
   * `cover` (keyless tables, final call): what the copy holds of the stream (snapshot-cover.ts),
   * stored with the done marker; applyBatch then skips that table's changes it holds.
   */
  loadChunk(table: TableInfo, rows: Row[], chunkId: string, final: boolean, cover?: string): Promise<void>;
  /**
   * Optional: snapshot rows of a keyed table already in the destination's
   * bulk text form (PostgreSQL: COPY text, `rows` lines), otherwise as
   * loadChunk. `copyTextSafe` tells which columns may travel so.
   */
  loadChunkCopyText?(table: TableInfo, text: Buffer, rows: number, chunkId: string, final: boolean): Promise<void>;
  copyTextSafe?(column: ColumnType): boolean;
  /** Whether a snapshot chunk already committed. */
  isChunkDone(chunkId: string): Promise<boolean>;
  /** Apply a batch of changes for one lane and store `sequence` as that lane's checkpoint, in one transaction. */
  applyBatch(events: ChangeEvent[], lane: number, sequence: string): Promise<void>;
  /**
   * Optional: every lane's part of a DDL-free batch (`parts[lane]`, as splitLanes cut it) in ONE transaction
   * that moves every lane's checkpoint to `sequence`: the same rows and checkpoints as applyBatch on each
   * part, with one transaction instead of one per lane (for small batches, where lanes gain nothing).
   */
  applyWhole?(parts: ChangeEvent[][], sequence: string): Promise<void>;
  /**
   * Before a re-snapshot (the source lost the capture's position): in one
   * transaction, empty the destination tables of `tables`, forget this job's
   * snapshot chunks (and their covers), and set lanes 0..lanes-1 to `through`
   * (the feed's gap marker), so nothing from before the loss is applied again.
   */
  resetForResnapshot(tables: TableInfo[], lanes: number, through: string): Promise<void>;
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
  // A table renamed in this batch gets its new name only when the batch reaches the rename: creating it
  // ahead would leave the rename two tables to choose from. Its rows after the rename go to the renamed table.
  let renamedHere: Set<string> | undefined;
  // Consecutive events of one table are looked up once (a key string per event was a per-row cost).
  let lastSchema: string | undefined; let lastTable: string | undefined;
  for (const e of events) {
    if (e.op === 'ddl') {
      const r = tableRenameOf(e);
      if (r) (renamedHere ??= new Set()).add(`${r.to.schema}\u0000${r.to.table}`);
      lastSchema = undefined;
      continue;
    }
    if (e.columns.length === 0) continue;
    if (e.table === lastTable && e.schema === lastSchema) continue;
    lastSchema = e.schema; lastTable = e.table;
    const id = `${e.schema}\u0000${e.table}`;
    if (seen.has(id) || renamedHere?.has(id)) continue;
    seen.add(id);
    out.push({ schema: e.schema, table: e.table, columns: e.columns, key: e.key, estimatedRows: 0 });
  }
  return out;
}

export function unsee(tables: TableInfo[], seen: Set<string>): void {
  for (const t of tables) seen.delete(`${t.schema}\u0000${t.table}`);
}

/**
 * The checkpoint each lane's last batch committed through this applier. A
 * lane's checkpoint never moves backwards, so finding it below that means
 * the destination forgot commits it had acknowledged: it crashed and came
 * back without them (PostgreSQL with synchronous_commit=off, MariaDB with
 * innodb_flush_log_at_trx_commit=0, or a restore). The rows of those batches
 * are gone with their checkpoint, and the caller's read position is already
 * past them, so going on would skip them for good. `check` throws a
 * RetriableError instead: the apply task restarts, reads the checkpoints the
 * destination has, and applies those batches again.
 */
export class LaneCommits {
  private readonly lanes = new Map<number, string>();

  /** Call with the lane's checkpoint as read (locked) inside the batch's transaction. */
  check(lane: number, checkpoint: string | null): void {
    const mine = this.lanes.get(lane);
    if (mine === undefined || (checkpoint !== null && compareSequences(checkpoint, mine) >= 0)) return;
    throw new RetriableError(
      `destination lost committed changes: lane ${lane}'s checkpoint is ${checkpoint ?? 'gone'} but ${mine} was committed there `
      + '(the destination restarted without acknowledged commits, e.g. synchronous_commit=off or innodb_flush_log_at_trx_commit=0); '
      + 'applying again from the checkpoints it has');
  }

  /** The newest checkpoint this instance committed on the lane, if any. */
  last(lane: number): string | undefined {
    return this.lanes.get(lane);
  }

  /** Call once the batch's transaction committed with `sequence` as the lane's checkpoint. */
  committed(lane: number, sequence: string): void {
    const mine = this.lanes.get(lane);
    if (mine === undefined || compareSequences(sequence, mine) > 0) this.lanes.set(lane, sequence);
  }
}

/**
 * Per keyless table (source names), the cover its snapshot chunk stored, read
 * once per applier: apply starts after the snapshot is done, so it does not
 * change under a running apply. Tables with a key, or without a snapshot
 * chunk, have none.
 */
export class SnapshotCovers {
  private readonly covers = new Map<string, Cover | null>();
  constructor(private readonly read: (chunkId: string) => Promise<string | null>, private readonly logger?: Logger) {}

  /** Drops the changes of `events` that a keyless table's snapshot copy already holds. */
  async filter(events: ChangeEvent[]): Promise<ChangeEvent[]> {
    let out: ChangeEvent[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      let held = false;
      if (coverable(e, isTruncate)) {
        const id = snapshotChunkId(e.schema, e.table, 0);
        if (!this.covers.has(id)) {
          const text = await this.read(id);
          this.covers.set(id, parseCover(text));
          this.logger?.info({ table: `${e.schema}.${e.table}`, cover: text }, text ? 'keyless table: skipping the changes its snapshot copy holds' : 'keyless table without a snapshot cover');
        }
        held = this.covers.get(id)?.holds(e) ?? false;
      }
      if (held) out ??= events.slice(0, i);
      else out?.push(e);
    }
    return out ?? events;
  }
}

const isTruncate = (ddl: string): boolean => classifyDdl(ddl, { fromPgCapture: true }).kind === 'truncate';
