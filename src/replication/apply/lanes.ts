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

/** FNV-1a, 32 bit: stable across processes and versions, unlike any runtime hash. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Key values are hashed as their JSON-safe text, so 5 and "5" (both legal for int) hash alike. */
function keyText(row: Row | null, key: string[]): string {
  return key.map((k) => { const v = row?.[k]; return v === null || v === undefined ? '\u0000null' : String(v); }).join('\u0001');
}

function laneFor(table: string, keyPart: string | null, lanes: number): number {
  return fnv1a(keyPart === null ? table : `${table}\u0002${keyPart}`) % lanes;
}

function tableOf(e: ChangeEvent): string {
  return `${e.schema}.${e.table}`;
}

function checkLanes(lanes: number): void {
  if (!Number.isInteger(lanes) || lanes < 1) throw new FatalError(`lanes must be a positive integer, got ${lanes}`);
}

/** The lane of an event: by its (new) key; DDL and keyless tables by table. */
export function laneOf(event: ChangeEvent, lanes: number): number {
  checkLanes(lanes);
  if (lanes === 1) return 0;
  if (event.op === Operation.Ddl || event.key.length === 0) return laneFor(tableOf(event), null, lanes);
  const row = event.op === Operation.Delete ? event.before : event.after;
  return laneFor(tableOf(event), keyText(row, event.key), lanes);
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
    if (e.op === Operation.Update && e.key.length > 0 && e.before) {
      const oldLane = laneFor(tableOf(e), keyText(e.before, e.key), lanes);
      const newLane = laneOf(e, lanes);
      if (keyText(e.before, e.key) !== keyText(e.after, e.key) && oldLane !== newLane) {
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
