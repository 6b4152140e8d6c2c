import type { ColumnType, Row } from './change-event.ts';

/** A source table as the snapshot and apply see it. */
export interface TableInfo {
  schema: string;
  table: string;
  columns: ColumnType[];
  /** Primary key (or first NOT NULL unique key) columns; empty = none, the full row is the key. */
  key: string[];
  /** Row estimate from statistics, for progress. */
  estimatedRows: number;
}

/** A primary-key range: rows with key > `after` (exclusive, undefined = from start) and <= `upTo` (inclusive, undefined = to end). */
export interface ChunkBounds {
  index: number;
  after?: Row;
  upTo?: Row;
}
