/**
 * MariaDB rows kept as their binlog row-image bytes, for the MariaDB apply
 * (issue 12; apply/mysql-binlog-rows.ts) and the feed (feed/feed-codec-wire.ts).
 *
 * Why: a MariaDB -> MariaDB job wrote every change again as SQL text
 * (INSERT ... ON DUPLICATE KEY UPDATE with literal values), which the
 * destination parsed back into the same values; in the apply bench that text
 * cost the destination about 40% more CPU than the row events a replica
 * applies, and building it was a sixth of Tributary's own process. The
 * capture already holds the row images the source wrote: a table's rows in
 * the binlog's own binary layout, read by the same server code that a
 * replica uses. So the fast row decoder (capture/mysql-zongji-hooks.ts)
 * copies each rows event's image bytes once, the mapper attaches each
 * change's span of them to its after image, and the MariaDB applier sends
 * them back as row events (a `BINLOG` statement) where the destination
 * table is the source table's twin.
 *
 * The feed writes the same bytes instead of each row's JSON (JSON was a
 * twelfth of the MariaDB -> MariaDB process and a fifth of what it
 * allocated): every rows event's images are kept, a delete's on its before
 * row (marked `deleted`, never an upsert's), and the mapper gives a change's
 * images the columns its rows were converted by when they are exactly the
 * plan's decoding of them (`cols`).
 *
 * The copy is needed: mysql2 reuses its packet buffer for the next packet.
 */
import type { TablePlan } from './capture/mysql-rows-decoder.ts';
import type { ColumnType, Row } from './change-event.ts';
import { ROW_IMAGE_SLOT } from './row-image-slot.ts';

/** A TABLE_MAP event as the source wrote it, and what its columns are. */
export interface TableMapImage {
  /** The event's body from the table id to the end (no checksum): a copy. */
  body: Buffer;
  /** Offset in `body` right after the table name's NUL: column count, types, metadata, nullability, optional metadata. */
  restAt: number;
  /** Column names and charsets (null: not a character column), in column order, from the event's FULL metadata. */
  names: string[];
  charsets: (string | null)[];
}

/** The row images of one rows event (the part after its column bitmaps), copied. */
export interface RowsImage {
  map: TableMapImage;
  bytes: Buffer;
  /** Update_rows: each change's span holds its before image, then its after image. */
  pairs: boolean;
  /** Offsets into `bytes`: start and end of each row (single images), or start, middle and end (pairs). */
  spans: number[];
  /** The plan every row of the event was decoded with (capture/mysql-rows-decoder.ts), when they all were. */
  plan?: TablePlan;
}

/** One change's images: bytes[start, mid) its before image (none for an insert: mid = start), bytes[mid, end) its after image. */
export interface RowImage {
  block: RowsImage;
  start: number;
  mid: number;
  end: number;
  /** The row object it belongs to (a row made from it, by a merge or a transform, does not have it). */
  row: Row;
  /** The change's before image as a row (updates): its key says which row the destination's Update_rows finds. */
  before: Row | null;
  /**
   * The change's columns when its rows are exactly what the block's plan decodes from these images, converted by
   * these columns (capture/mysql-values.ts presentRow): the feed then keeps the images instead of the rows' JSON
   * (feed/feed-codec-wire.ts). Null: the feed writes JSON.
   */
  cols: ColumnType[] | null;
  /** A delete's image, kept on its before row for the feed only: never an upsert's. */
  deleted: boolean;
}

/** Offset right after the schema and table names of a TABLE_MAP body (table id 6, flags 2, then two length-prefixed, NUL-ended names). */
export function tableMapRestAt(body: Buffer): number {
  let p = 8;
  p += 1 + body[p]! + 1;
  p += 1 + body[p]! + 1;
  return p;
}

/** Whether the first `n` bits of `bitmap` are all set (every column present: binlog_row_image=FULL). */
export function allColumns(bitmap: Buffer, n: number): boolean {
  for (let i = 0; i < n; i++) if ((bitmap[i >> 3]! & (1 << (i & 7))) === 0) return false;
  return true;
}


/**
 * Attaches the i-th change of `block` to `after`, its after image as the mapper made it (a delete's before image,
 * with `deleted`): a hidden slot (hidden-slot.ts), so that no copy, spread, JSON text or comparison of the row sees it.
 */
export function keepRowImage(after: Row, block: RowsImage, i: number, before: Row | null = null, cols: ColumnType[] | null = null, deleted = false): void {
  const s = block.spans;
  let image: RowImage;
  if (block.pairs) {
    const k = i * 3;
    if (k + 2 >= s.length) return;
    image = { block, start: s[k]!, mid: s[k + 1]!, end: s[k + 2]!, row: after, before, cols, deleted: false };
  } else {
    const k = i * 2;
    if (k + 1 >= s.length) return;
    image = { block, start: s[k]!, mid: s[k]!, end: s[k + 1]!, row: after, before: null, cols, deleted };
  }
  ROW_IMAGE_SLOT.set(after, image);
}

/** The kept images of `row` when it is still the after image they were kept for. */
export function rowImageOf(row: Row): RowImage | undefined {
  const img = ROW_IMAGE_SLOT.get(row) as RowImage | undefined;
  return img !== undefined && img.row === row ? img : undefined;
}
