import type { ColumnType, Row, SourcePosition } from '../change-event.ts';
import type { TableFilter } from '../connection-config.ts';
import type { ChunkBounds, TableInfo } from '../table-info.ts';

export interface ReadChunkOptions {
  /** PostgreSQL: import this exported snapshot if it is still available. */
  snapshotName?: string;
  /**
   * Keyless tables: called once the chunk's read is consistent, with what it
   * holds of the stream (snapshot-cover.ts), for the applier to store with
   * the chunk. Not called where the engine cannot tell (MySQL).
   */
  onCover?: (cover: string) => void;
  /** Call onCover for keyed tables too (incremental snapshots check their read against the stream). */
  coverKeyed?: boolean;
}

/** Rows of a chunk as COPY text (text format, `\n` after every row). */
export interface CopyTextBatch {
  rows: number;
  text: Buffer;
}

/** A row whose COPY text the source cannot produce exactly (NUL in text, a zero date): read the chunk by rows. */
export class CopyTextFallback extends Error {
  constructor(reason: string) {
    super(`server-side COPY text not possible: ${reason}`);
    this.name = 'CopyTextFallback';
  }
}

/**
 * Reads the initial copy. Chunks are primary-key ranges so any chunk can be
 * (re)read on its own by any worker. Consistency (see docs/consistency.md):
 * the stream replays from the position fixed before the first chunk, and
 * apply is idempotent with full row images, so chunks read later than that
 * position converge.
 */
export interface SnapshotReader {
  listTables(filter: TableFilter): Promise<TableInfo[]>;
  /** Split a table into key ranges of about `chunkRows` rows. Tables without a key get one chunk. */
  /**
   * `evenRanges`: key ranges may be of equal width rather than of exactly chunkRows rows (a reader may then plan
   * a dense integer key from its bounds alone, without reading every key first: snapshots; verification wants
   * exact counts).
   */
  planChunks(table: TableInfo, chunkRows: number, opts?: { evenRanges?: boolean }): Promise<ChunkBounds[]>;
  /** Read one chunk, in batches of up to `batchRows`. */
  readChunk(table: TableInfo, chunk: ChunkBounds, batchRows: number, opts?: ReadChunkOptions): AsyncIterable<Row[]>;
  /**
   * Optional: read one chunk as PostgreSQL COPY text made by the source
   * itself (one line per row, columns in `table.columns` order), for the
   * columns `safe` accepts; undefined when the table cannot be read so (a
   * column `safe` rejects, no key). A row the server cannot render exactly
   * throws CopyTextFallback: the caller reads the chunk again with readChunk.
   */
  readChunkCopyText?(table: TableInfo, chunk: ChunkBounds, batchRows: number, safe: (c: ColumnType) => boolean): AsyncIterable<CopyTextBatch> | undefined;
  /** The position a snapshot taken now is consistent with (MariaDB: binlog_snapshot_file/pos or gtid). */
  position(): Promise<SourcePosition>;
  close(): Promise<void>;
}
