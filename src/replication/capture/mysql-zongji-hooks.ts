/**
 * Where the fast row decoder (mysql-rows-decoder.ts) and the table-map reuse
 * (mysql-table-maps.ts) hook into zongji.
 *
 * zongji builds rows in the constructor of its rows event classes by calling
 * `this._fetchOneRow(parser)` once per row. Those classes are not exported,
 * so the module is loaded by path next to zongji's entry point (the same
 * module instance zongji uses) and `_fetchOneRow` is overridden on their
 * prototypes. The override decodes only for zongji instances marked with
 * enableFastRows(); everything else, and every table with a column type the
 * decoder does not handle, takes zongji's own code, untouched.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeRow, planFor, type TablePlan, type ZjParser, type ZjTableMap } from './mysql-rows-decoder.ts';
import { installTableMapReuse, tableMapImageOf } from './mysql-table-maps.ts';
import { allColumns, type RowsImage } from '../mysql-row-images.ts';

const FAST = Symbol.for('tributary.fastRows');
/** On a zongji instance: its rows keep their images (rowsImageOf). */
const KEEP_IMAGES = Symbol('tributary.keepRowImages');

export interface FastRowStats {
  /** Row images decoded here. */
  fast: number;
  /** Row images of marked zongji instances left to zongji (a column type not handled here). */
  fallback: number;
  /** First rows of a table map, left to zongji (see setEagerPlans). */
  deferred: number;
}
export const fastRowStats: FastRowStats = { fast: 0, fallback: 0, deferred: 0 };

const DECODED = Symbol('tributary.rowsDecodedHere');
const IMAGES = Symbol('tributary.rowsImage');

interface RowsEventLike {
  _zongji: Record<symbol, unknown> & { isMariaDb?: boolean };
  tableMap: Record<number, ZjTableMap>;
  tableId: number;
  rows: unknown[];
  columns_present_bitmap: Buffer;
  columns_present_bitmap2?: Buffer;
  __nullBytes?: number;
  __nullBytes2?: number;
  numberOfColumns?: number;
  [DECODED]?: true;
  [IMAGES]?: RowsImage | null;
}

/**
 * Whether a rows event's rows were decoded here: each of them then has
 * exactly the table map's column names as own keys, in column order, and
 * the plain object prototype (the plan's newRow).
 */
export function rowsDecodedHere(event: object): boolean {
  return (event as RowsEventLike)[DECODED] === true;
}

/**
 * The row images of a rows event decoded here (mysql-row-images.ts): present when its table map was read from its
 * own FULL metadata and every column is in each image (binlog_row_image=FULL).
 */
export function rowsImageOf(event: object): RowsImage | undefined {
  return (event as RowsEventLike)[IMAGES] ?? undefined;
}

/** Opens the event's image at its first row: the bytes from there to the event's end (checksum left out), copied. */
function openImage(ev: RowsEventLike, parser: ZjParser & { _packetEnd: number }, pairs: boolean): RowsImage | null {
  // MariaDB's own images only: the destination reads them as MariaDB wrote them (MySQL's JSON, for one, is binary).
  if (ev._zongji?.[KEEP_IMAGES] !== true || ev._zongji.isMariaDb !== true) return null;
  const map = tableMapImageOf(ev.tableMap[ev.tableId]);
  const n = ev.numberOfColumns ?? -1;
  if (!map || n !== map.names.length || !allColumns(ev.columns_present_bitmap, n) || (pairs && !allColumns(ev.columns_present_bitmap2!, n))) return null;
  const bytes = Buffer.allocUnsafe(parser._packetEnd - parser._offset);
  parser._buffer.copy(bytes, 0, parser._offset, parser._packetEnd);
  return { map, bytes, pairs, spans: [] };
}

function nullBytesOf(bitmap: Buffer): number {
  let bits = 0;
  for (let i = 0; i < bitmap.length; i++) { let b = bitmap[i]!; while (b) { bits += b & 1; b >>= 1; } }
  return Math.floor((bits + 7) / 8);
}

/** The block's plan stays only while every row of its event is decoded with the same one (the first may be zongji's). */
function notePlan(img: RowsImage, first: boolean, plan: TablePlan | null): void {
  if (first) img.plan = plan ?? undefined;
  else if (img.plan !== plan) img.plan = undefined;
}

type FetchRow = (this: RowsEventLike, parser: ZjParser & { _packetEnd: number }) => unknown;

/**
 * The plan that decodes `ev`'s rows here (counted in fastRowStats), or null where zongji's own reader takes
 * them: fast rows not enabled for its instance, its table map without columns, or no plan for them yet.
 */
function fastPlan(ev: RowsEventLike): NonNullable<ReturnType<typeof planFor>> | null {
  if (ev._zongji?.[FAST] !== true) return null;
  const map = ev.tableMap[ev.tableId];
  const plan = map && Array.isArray(map.columns) ? planFor(map) : null;
  if (plan === undefined) { fastRowStats.deferred++; return null; }
  if (plan === null) { fastRowStats.fallback++; return null; }
  fastRowStats.fast++;
  // All rows of the event are decoded here when the first one is (the plan stays for the table map).
  if (ev.rows.length === 0) ev[DECODED] = true;
  return plan;
}

let installed: Promise<boolean> | undefined;

/**
 * The zongji versions whose readRow/readMysqlValue this decoder reproduces
 * (checked by test/integration/replication/mysql-rows-decoder.test.ts). Any
 * other version keeps zongji's own decoder until the test has been run
 * against it and the version added here.
 */
export const ZONGJI_VERSIONS = new Set(['0.9.0']);

/**
 * Installs the override once per process. Resolves false (zongji keeps
 * decoding everything) for a zongji version not in ZONGJI_VERSIONS, or when
 * its rows event module is not where this version keeps it or does not look
 * as expected.
 */
export function installFastRowDecoder(): Promise<boolean> {
  installed ??= (async () => {
    try {
      const entry = createRequire(import.meta.url).resolve('@vlasky/zongji');
      const { version } = JSON.parse(readFileSync(path.join(path.dirname(entry), 'package.json'), 'utf8')) as { version?: string };
      if (!version || !ZONGJI_VERSIONS.has(version)) return false;
      const mod = await import(pathToFileURL(path.join(path.dirname(entry), 'lib', 'rows_event.js')).href) as Record<string, { prototype: { _fetchOneRow?: FetchRow } } | undefined>;
      const { WriteRows, DeleteRows, UpdateRows } = mod;
      const single = WriteRows?.prototype._fetchOneRow;
      const double = UpdateRows?.prototype._fetchOneRow;
      if (typeof single !== 'function' || typeof double !== 'function' || !DeleteRows || DeleteRows.prototype._fetchOneRow !== single) return false;
      // Row images (mysql-row-images.ts) are kept whichever decoder reads the rows: a span is where the parser was.
      const fetchOne: FetchRow = function (parser) {
        const plan = fastPlan(this);
        let img = this[IMAGES];
        if (img === undefined) img = this[IMAGES] = openImage(this, parser, false);
        const base = img === null ? 0 : parser._packetEnd - img.bytes.length;
        if (img !== null) {
          img.spans.push(parser._offset - base);
          notePlan(img, this.rows.length === 0, plan);
        }
        let row: unknown;
        if (plan) {
          const nb = this.__nullBytes ??= nullBytesOf(this.columns_present_bitmap);
          row = decodeRow(parser, plan, this.columns_present_bitmap, nb);
        } else {
          row = single.call(this, parser);
        }
        if (img !== null) img.spans.push(parser._offset - base);
        return row;
      };
      const fetchTwo: FetchRow = function (parser) {
        const plan = fastPlan(this);
        let img = this[IMAGES];
        if (img === undefined) img = this[IMAGES] = openImage(this, parser, true);
        if (!plan) {
          if (img === null) return double.call(this, parser);
          img.plan = undefined;
          // zongji reads both images in one call; its one-image reader, given each bitmap in turn, reads them apart.
          const base = parser._packetEnd - img.bytes.length;
          img.spans.push(parser._offset - base);
          const before = single.call(this, parser);
          img.spans.push(parser._offset - base);
          const first = this.columns_present_bitmap;
          this.columns_present_bitmap = this.columns_present_bitmap2!;
          try {
            const after = single.call(this, parser);
            img.spans.push(parser._offset - base);
            return { before, after };
          } finally {
            this.columns_present_bitmap = first;
          }
        }
        const nb1 = this.__nullBytes ??= nullBytesOf(this.columns_present_bitmap);
        const nb2 = this.__nullBytes2 ??= nullBytesOf(this.columns_present_bitmap2!);
        const base = img === null ? 0 : parser._packetEnd - img.bytes.length;
        if (img !== null) {
          img.spans.push(parser._offset - base);
          notePlan(img, this.rows.length === 0, plan);
        }
        const before = decodeRow(parser, plan, this.columns_present_bitmap, nb1);
        if (img !== null) img.spans.push(parser._offset - base);
        const after = decodeRow(parser, plan, this.columns_present_bitmap2!, nb2);
        if (img !== null) img.spans.push(parser._offset - base);
        return { before, after };
      };
      WriteRows!.prototype._fetchOneRow = fetchOne;
      DeleteRows.prototype._fetchOneRow = fetchOne;
      UpdateRows!.prototype._fetchOneRow = fetchTwo;
      // Repeated TABLE_MAP events of the same instances reuse zongji's work, and so the same column list and plan.
      const events = await import(pathToFileURL(path.join(path.dirname(entry), 'lib', 'binlog_event.js')).href) as { TableMap?: Parameters<typeof installTableMapReuse>[0] };
      if (events.TableMap) installTableMapReuse(events.TableMap, (z) => (z as Record<symbol, unknown> | undefined)?.[FAST] === true);
      return true;
    } catch {
      return false;
    }
  })();
  return installed;
}

/** Marks a zongji instance: its row events are decoded here (once installFastRowDecoder resolved true). */
export function enableFastRows(zongji: object, on = true, images = false): void {
  (zongji as Record<symbol, unknown>)[FAST] = on;
  (zongji as Record<symbol, unknown>)[KEEP_IMAGES] = on && images;
}
