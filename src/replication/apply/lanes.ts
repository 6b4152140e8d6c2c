/**
 * ParallelWorkers lanes. A row's changes always land in the same lane, in
 * order, so lanes can be applied concurrently without reordering any row;
 * docs/consistency.md states the whole model.
 *
 * - keyed tables: lane = hash(schema.table, key values) mod lanes. An update
 *   that moves a row to another key is split into a delete in the old key's
 *   lane and an insert in the new key's lane, so both keys keep their order.
 * - keyless tables: lane = hash(schema.table): a row has no identity but its
 *   image, so the whole table keeps one order.
 * - DDL must not be split at all: cut the stream with `cutAtDdl` and apply a
 *   DDL segment alone, after every lane finished the segment before it.
 */
import { Operation, type ChangeEvent, type Row } from '../change-event.ts';
import { FatalError } from '../errors.ts';

const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a, 32 bit, continued from `h` over `s`: stable across processes and versions, unlike any runtime hash. */
function fnv1a(s: string, h = FNV_OFFSET): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A key value as hashed: its JSON-safe text, so 5 and "5" (both legal for int) hash alike. */
function valueText(v: unknown): string {
  return v === null || v === undefined ? '\u0000null' : String(v);
}

/** FNV-1a continued from `h` over the text of a safe integer (String(n): '-' and its digits; -0 is "0"), without making it. */
function fnv1aInteger(n: number, h: number): number {
  if (n < 0) { h ^= 0x2d; h = Math.imul(h, 0x01000193) >>> 0; n = -n; }
  // Powers of ten up to 10^15 and their quotients by ten are exact doubles, as is n - d * div below 2^53.
  let div = 1;
  while (div * 10 <= n) div *= 10;
  for (;;) {
    const d = Math.floor(n / div);
    h ^= 0x30 + d;
    h = Math.imul(h, 0x01000193) >>> 0;
    if (div === 1) return h;
    n -= d * div;
    div /= 10;
  }
}

/** FNV-1a continued from `h` over valueText(v). */
function fnv1aValue(v: unknown, h: number): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return fnv1aInteger(v, h);
  return fnv1a(valueText(v), h);
}

// The hash of the last "schema.table" (hot: a batch's events are mostly of one table).
let lastSchema = '';
let lastTable = '';
let lastTableHash = fnv1a('.');

function tableHash(schema: string, table: string): number {
  if (schema !== lastSchema || table !== lastTable) {
    lastTableHash = fnv1a(table, fnv1a('.', fnv1a(schema)));
    lastSchema = schema;
    lastTable = table;
  }
  return lastTableHash;
}

/**
 * The lane of `schema.table` plus, for keyed rows, the key values: the FNV-1a
 * hash of "schema.table\u0002v1\u0001v2..." (or "schema.table" alone),
 * computed piece by piece instead of building that text (hot: every event),
 * an integer key without its text.
 */
function laneFor(e: ChangeEvent, keyed: boolean, row: Row | null | undefined, lanes: number): number {
  let h = tableHash(e.schema, e.table);
  if (keyed) {
    h = fnv1a('\u0002', h);
    for (let i = 0; i < e.key.length; i++) {
      if (i > 0) h = fnv1a('\u0001', h);
      h = fnv1aValue(row?.[e.key[i]!], h);
    }
  }
  return h % lanes;
}

/** Same key values (as hashed) in both images. */
function sameKey(a: Row, b: Row | null, key: string[]): boolean {
  // The same value is the same text (most updates keep their key): only different values are compared as text.
  for (const k of key) { const x = a[k]; const y = b?.[k]; if (x !== y && valueText(x) !== valueText(y)) return false; }
  return true;
}

function checkLanes(lanes: number): void {
  if (!Number.isInteger(lanes) || lanes < 1) throw new FatalError(`lanes must be a positive integer, got ${lanes}`);
}

/** The lane of an event: by its (new) key; DDL and keyless tables by table. */
export function laneOf(event: ChangeEvent, lanes: number): number {
  checkLanes(lanes);
  if (lanes === 1) return 0;
  if (event.op === Operation.Ddl || event.key.length === 0) return laneFor(event, false, undefined, lanes);
  return laneFor(event, true, event.op === Operation.Delete ? event.before : event.after, lanes);
}

/**
 * Split a DDL-free batch into `lanes` ordered lists. Throws on DDL: a
 * schema change has to be a barrier across lanes (see `cutAtDdl`).
 */
export function splitLanes(events: ChangeEvent[], lanes: number): ChangeEvent[][] {
  checkLanes(lanes);
  const out: ChangeEvent[][] = Array.from({ length: lanes }, () => []);
  for (const e of events) {
    if (e.op === Operation.Ddl) throw new FatalError('splitLanes: cut the batch at DDL first (cutAtDdl)');
    if (lanes > 1 && e.op === Operation.Update && e.key.length > 0 && e.before && !sameKey(e.before, e.after, e.key)) {
      const oldLane = laneFor(e, true, e.before, lanes);
      const newLane = laneFor(e, true, e.after, lanes);
      if (oldLane !== newLane) {
        out[oldLane]!.push({ ...e, op: Operation.Delete, after: null });
        out[newLane]!.push({ ...e, op: Operation.Insert, before: null });
        continue;
      }
    }
    out[laneOf(e, lanes)]!.push(e);
  }
  return out;
}

/** Cut an ordered batch into runs without DDL and single-DDL runs, in order. */
export function cutAtDdl(events: ChangeEvent[]): ChangeEvent[][] {
  // Almost every batch has no DDL: it is its own only run (the caller's array, not a copy of it).
  let ddl = false;
  for (let i = 0; i < events.length; i++) if (events[i]!.op === Operation.Ddl) { ddl = true; break; }
  if (!ddl) return events.length ? [events] : [];
  const out: ChangeEvent[][] = [];
  let cur: ChangeEvent[] = [];
  for (const e of events) {
    if (e.op === Operation.Ddl) {
      if (cur.length) out.push(cur);
      out.push([e]);
      cur = [];
    } else {
      cur.push(e);
    }
  }
  if (cur.length) out.push(cur);
  return out;
}
