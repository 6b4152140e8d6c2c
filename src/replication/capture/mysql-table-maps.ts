/**
 * zongji's table-map work done once per distinct TABLE_MAP event instead of
 * once per statement.
 *
 * Why (issue 12, the single-row capture profile in docs/benchmarks.md): with
 * binlog_row_metadata=FULL, MariaDB writes a TABLE_MAP before every
 * statement's row events, and zongji parses its optional metadata block,
 * builds information_schema-shaped column schemas and a new column list for
 * each one. In a stream of single-row transactions that was about a third of
 * the capture's time, and since the column list was new every time, the fast
 * row decoder (mysql-rows-decoder.ts, plans cached per column list) never saw
 * a list twice and left every row to zongji's slower decoder.
 *
 * A TABLE_MAP is a pure function of its bytes: the body after the common
 * header (table id, flags, schema and table name, column types, per-column
 * metadata, nullability, optional metadata) decides every field zongji
 * derives from it. So an event whose body repeats, byte for byte, the last
 * one recorded for its table id gets that event's optional-metadata fields, column
 * schemas and column list (the same objects; nothing downstream changes
 * them, and the signedness zongji writes into the schemas was written the
 * first time), and the parse of its optional metadata is skipped. An ALTER
 * TABLE changes the body (new types, metadata or names): recorded anew.
 * Only the self-describing path is cached (zongji's own condition: FULL
 * metadata, and on MariaDB no ambiguous classic temporal column); tables
 * zongji describes from information_schema keep its own code, as do zongji
 * instances not marked for fast rows.
 *
 * Hooks, on TableMap.prototype of the zongji version mysql-zongji-hooks.ts
 * checked: `_readTableId` (where the body starts), `_readOptionalMetadata`
 * (the lookup), `buildColumnSchemas` and `updateColumnInfo` (reuse, or
 * record once the first event is complete).
 */
import { tableMapRestAt, type TableMapImage } from '../mysql-row-images.ts';

/** What zongji's _readOptionalMetadata sets on a TableMap event. */
const OPTIONAL_FIELDS = ['columnNames', 'signedness', 'primaryKey', 'columnVisibility', 'geometryTypes', '_columnCharsetIds', '_enumSetValues'] as const;

/** Distinct table maps kept at most (the cache starts over beyond it). */
const MAX_ENTRIES = 512;

interface Entry {
  /** The event's body (a copy), from the table id to the end. */
  body: Buffer;
  /** The optional-metadata fields the first event had, as own properties. */
  fields: [string, unknown][];
  /** Bytes of the body zongji read, from its start (the parser's offset after the event). */
  consumed: number;
  columnSchemas: unknown[];
  columns: unknown[];
  /** The event as bytes, for the MariaDB apply's row events (mysql-row-images.ts); made on first use. */
  image?: TableMapImage | null;
}

interface ZjTableMapState { columnSchemas?: unknown[]; columns?: unknown[]; [MAP_IMAGE]?: TableMapImage | null }

interface TableMapEvent {
  tableId: number;
  columnCount: number;
  columnTypes: number[];
  columnsMetadata: (Record<string, unknown> | undefined)[];
  tableMap: Record<number, ZjTableMapState | undefined>;
  [START]?: number;
  [HIT]?: Entry;
  [PENDING]?: { body: Buffer; consumed: number; fields: [string, unknown][] };
  [BUILT]?: unknown[];
}

interface ZjParser { _buffer: Buffer; _offset: number; _packetEnd: number }

type Method<A extends unknown[], R> = (this: TableMapEvent, ...args: A) => R;

interface TableMapClass {
  prototype: {
    _readTableId?: Method<[ZjParser], void>;
    _readOptionalMetadata?: Method<[ZjParser, { useChecksum?: boolean } | undefined], void>;
    buildColumnSchemas?: Method<[], unknown[]>;
    updateColumnInfo?: Method<[], void>;
  };
}

const START = Symbol('tributary.tableMapBodyStart');
const HIT = Symbol('tributary.tableMapReused');
const PENDING = Symbol('tributary.tableMapPending');
const BUILT = Symbol('tributary.tableMapBuilt');
/** On zongji's table-map state of a table id: the TABLE_MAP event's image (tableMapImageOf). */
const MAP_IMAGE = Symbol('tributary.tableMapImage');

/** The last recorded table map per table id (a table keeps its id from statement to statement until it is reopened). */
const cache = new Map<number, Entry>();

export interface TableMapStats {
  /** TABLE_MAP events whose work was taken from an identical earlier one. */
  reused: number;
  /** TABLE_MAP events parsed by zongji and kept for reuse. */
  recorded: number;
}
export const tableMapStats: TableMapStats = { reused: 0, recorded: 0 };

/**
 * Installs the hooks on zongji's TableMap class (once; the caller checked
 * zongji's version). `enabled(zongji)`: whether that instance's events may
 * be reused (the instances marked for fast rows). False when the class does
 * not look as expected (then nothing is changed).
 */
export function installTableMapReuse(TableMap: TableMapClass, enabled: (zongji: unknown) => boolean): boolean {
  const proto = TableMap.prototype;
  const readTableId = proto._readTableId;
  const readOptional = proto._readOptionalMetadata;
  const build = proto.buildColumnSchemas;
  const update = proto.updateColumnInfo;
  if (typeof readTableId !== 'function' || typeof readOptional !== 'function' || typeof build !== 'function' || typeof update !== 'function') return false;

  proto._readTableId = function (parser) {
    this[START] = parser._offset;
    readTableId.call(this, parser);
  };

  proto._readOptionalMetadata = function (parser, zongji) {
    const start = this[START];
    if (start === undefined || !enabled(zongji)) { readOptional.call(this, parser, zongji); return; }
    const end = parser._packetEnd - (zongji?.useChecksum ? 4 : 0);
    const body = parser._buffer.subarray(start, end);
    const hit = cache.get(this.tableId);
    if (hit && hit.body.equals(body)) {
      for (const [name, value] of hit.fields) (this as unknown as Record<string, unknown>)[name] = value;
      parser._offset = start + hit.consumed;
      this[HIT] = hit;
      return;
    }
    readOptional.call(this, parser, zongji);
    const fields: [string, unknown][] = [];
    for (const name of OPTIONAL_FIELDS) if (Object.hasOwn(this, name)) fields.push([name, (this as unknown as Record<string, unknown>)[name]]);
    // A copy: the packet's buffer is reused for the packets after it.
    this[PENDING] = { body: Buffer.from(body), consumed: parser._offset - start, fields };
  };

  proto.buildColumnSchemas = function () {
    const hit = this[HIT];
    if (hit) return hit.columnSchemas;
    const schemas = build.call(this);
    if (this[PENDING]) this[BUILT] = schemas;
    return schemas;
  };

  proto.updateColumnInfo = function () {
    const hit = this[HIT];
    const state = this.tableMap[this.tableId];
    if (hit && state && state.columnSchemas === hit.columnSchemas) {
      // zongji's first step, on this event's own arrays: ENUM/SET columns take their real type from the metadata.
      const md = this.columnsMetadata;
      for (let i = 0; i < this.columnCount; i++) {
        const m = md[i];
        if (m && m.type) { this.columnTypes[i] = m.type as number; delete m.type; }
      }
      state.columns = hit.columns;
      state[MAP_IMAGE] = hit.image ??= mapImage(hit.body, hit.columns);
      tableMapStats.reused++;
      return;
    }
    update.call(this);
    const pending = this[PENDING];
    const built = this[BUILT];
    // Recorded only from zongji's self-describing path: the schemas it built from this event are the table's.
    if (pending && built && state && state.columnSchemas === built && Array.isArray(state.columns)) {
      if (cache.size >= MAX_ENTRIES) cache.clear();
      const entry: Entry = { body: pending.body, fields: pending.fields, consumed: pending.consumed, columnSchemas: built, columns: state.columns };
      cache.set(this.tableId, entry);
      state[MAP_IMAGE] = entry.image = mapImage(entry.body, entry.columns);
      tableMapStats.recorded++;
    } else if (state) {
      state[MAP_IMAGE] = null;
    }
  };
  return true;
}

/**
 * The TABLE_MAP image of a table id's state, when its event was read on the self-describing path (FULL metadata:
 * column names and charsets known from the event itself); null otherwise.
 */
export function tableMapImageOf(state: object | undefined): TableMapImage | null {
  return (state as ZjTableMapState | undefined)?.[MAP_IMAGE] ?? null;
}

function mapImage(body: Buffer, columns: unknown[]): TableMapImage | null {
  const cols = columns as { name?: unknown; charset?: unknown }[];
  if (!cols.every((c) => typeof c?.name === 'string')) return null;
  try {
    const restAt = tableMapRestAt(body);
    if (restAt >= body.length) return null;
    return { body, restAt, names: cols.map((c) => c.name as string), charsets: cols.map((c) => (typeof c.charset === 'string' ? c.charset : null)) };
  } catch {
    return null;
  }
}

/** Tests: forget every recorded table map. */
export function clearTableMaps(): void {
  cache.clear();
}
