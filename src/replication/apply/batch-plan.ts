/**
 * Turns an ordered batch of change events into the statements' worth of work
 * an applier runs, independent of the destination dialect:
 *
 * - keyed tables: the batch collapses per (table, key) to its net effect, the
 *   last image winning; an update that changes the key becomes a delete of
 *   the old key plus an upsert of the new one. Deletes run before upserts, and
 *   each in the order of the row's last change, so a key freed by a delete can
 *   be taken by an upsert of the same batch.
 * - keyless tables: nothing can be collapsed (identical rows are distinct), so
 *   events keep their order; consecutive inserts are grouped.
 * - DDL and TRUNCATE are barriers: everything before them is planned and
 *   flushed first, so a row image never meets a table shape it was not
 *   captured with.
 *
 * Images may be partial (PostgreSQL leaves unchanged TOASTed values out of an
 * update); upserts are grouped by the set of columns present and only those
 * columns are written, and successive images of one row are merged.
 */
import { Operation, type ChangeEvent, type ColumnType, type Row } from '../change-event.ts';

export interface TableRef {
  schema: string;
  table: string;
}

export type Step =
  /** Keyed deletes: `keys` hold the key columns only. */
  | { kind: 'delete'; ref: TableRef; columns: ColumnType[]; key: string[]; keys: Row[] }
  /**
   * Keyed upserts; every row has exactly `columns` (a subset of the table's). `fresh`: every row's
   * first change in the batch was its INSERT, so the source did not have the key before the batch
   * and the destination should not either (a dialect may try a plain load first, and must fall back
   * to the upsert when a key is there after all: a replay, a snapshot overlap, rows made by hand).
   */
  | { kind: 'upsert'; ref: TableRef; columns: ColumnType[]; key: string[]; rows: Row[]; fresh?: true }
  /** Keyless inserts, in order. */
  | { kind: 'insert'; ref: TableRef; columns: ColumnType[]; rows: Row[] }
  /** Keyless delete of ONE row equal to `row` on every column it has. */
  | { kind: 'delete-one'; ref: TableRef; columns: ColumnType[]; row: Row }
  | { kind: 'ddl'; event: ChangeEvent };

/** `fresh`: the key's first change in the batch was an INSERT (and no delete of it followed). */
interface Pending { del: boolean; row: Row; fresh?: boolean }

interface KeyedTable {
  ref: TableRef;
  key: string[];
  columns: ColumnType[];
  /** Net effect per key, in the order of each key's last change. */
  rows: KeyedRows;
}

/** Runs KeyedRows keeps before it needs a Map, and the widest gap a run steps over. */
const MAX_RUNS = 16;
const MAX_GAP = 64;

/**
 * The batch's net effect per key, in the order of each key's last change: what a Map with delete-then-set does,
 * without the Map while it can. Why (issue 12 allocation profile): the Map, grown entry by entry to every lane's
 * batch of thousands of keys, was 5% of all bytes the PG -> PG apply bench allocated, yet most batches never
 * see a key twice: keys mostly arrive in runs (new rows, range updates), each lane taking every other key or so.
 * While every key is a number, each key seen lies in one of a few ranges [lo, hi] (a run, gaps of at most
 * MAX_GAP included); a number outside all of them cannot have been seen, so it is appended without a lookup and
 * widens the current run when it is within MAX_GAP of its end, or starts a run. Any other key (a string, a
 * composite, NULL, NaN, a number inside a range, a run past MAX_RUNS) builds the Map of every key's place once,
 * and the rest of the batch uses it.
 */
export class KeyedRows {
  /** Entries in order; a key's older entry is null once it moved to the end. */
  private readonly list: (Pending | null)[] = [];
  private readonly keys: RowKey[] = [];
  /** Each key's place in `list`, once needed (see the class comment); null before. */
  private index: Map<RowKey, number> | null;
  private readonly lo: number[] = [];
  private readonly hi: number[] = [];
  /** The run the last key went to. */
  private cur = -1;

  /** `exact`: a Map from the start (tests compare both ways). */
  constructor(exact = false) {
    this.index = exact ? new Map() : null;
  }

  get(k: RowKey): Pending | undefined {
    if (this.index === null) {
      if (this.outside(k)) return undefined;
      this.buildIndex();
    }
    const i = this.index!.get(k);
    return i === undefined ? undefined : this.list[i]!;
  }

  /** `p` as k's entry, last in order (an earlier entry of k is dropped). */
  setLast(k: RowKey, p: Pending): void {
    if (this.index === null) {
      if (this.outside(k)) { this.append(k, p); return; }
      this.buildIndex();
    }
    const i = this.index!.get(k);
    if (i !== undefined) this.list[i] = null;
    this.append(k, p);
  }

  forEach(fn: (p: Pending) => void): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      if (p) fn(p);
    }
  }

  /** A key that cannot have been seen: a number (not NaN) outside every range, with a run to take it. */
  private outside(k: RowKey): boolean {
    if (typeof k !== 'number' || k !== k) return false;
    const lo = this.lo;
    const hi = this.hi;
    for (let r = 0; r < lo.length; r++) if (k >= lo[r]! && k <= hi[r]!) return false;
    return lo.length < MAX_RUNS || this.near(k);
  }

  /** k (outside every range) is within MAX_GAP of the current run's end or start. */
  private near(k: number): boolean {
    const r = this.cur;
    return r >= 0 && (k - this.hi[r]! <= MAX_GAP && k > this.hi[r]! || this.lo[r]! - k <= MAX_GAP && k < this.lo[r]!);
  }

  private append(k: RowKey, p: Pending): void {
    const at = this.list.length;
    this.list.push(p);
    this.keys.push(k);
    if (this.index !== null) { this.index.set(k, at); return; }
    // Only keys outside() come here before the index exists: the current run takes k, or a new one does.
    const n = k as number;
    if (this.near(n)) {
      if (n > this.hi[this.cur]!) this.hi[this.cur] = n;
      else this.lo[this.cur] = n;
    } else {
      this.cur = this.lo.length;
      this.lo.push(n);
      this.hi.push(n);
    }
  }

  private buildIndex(): void {
    const index = new Map<RowKey, number>();
    for (let i = 0; i < this.keys.length; i++) index.set(this.keys[i]!, i);
    this.index = index;
  }
}

/**
 * A Map key for a row's key values, injective: a single-column key's number or string as it is (no text
 * made per row), null for SQL NULL; anything else is JSON text after a NUL and "j", and a string that
 * itself starts with NUL gets NUL and "s" before it, so no two values meet. Numbers and strings stay
 * apart, as they did when this was `n${v}` and `s${v}`.
 */
type RowKey = string | number | null;
function keyString(row: Row, key: string[]): RowKey {
  if (key.length === 1) {
    const v = row[key[0]!];
    if (typeof v === 'number') return v;
    if (typeof v === 'string') return v.charCodeAt(0) === 0 ? `\u0000s${v}` : v;
    if (v === null || v === undefined) return null;
  }
  return `\u0000j${JSON.stringify(key.map((k) => row[k] ?? null))}`;
}

function pick(row: Row, cols: string[]): Row {
  const out: Row = {};
  for (const c of cols) out[c] = row[c] ?? null;
  return out;
}

function refKey(e: TableRef): string {
  return `${e.schema.length}:${e.schema}.${e.table}`;
}

/** Plan a batch; see the module comment for the guarantees. */
export function planBatch(events: ChangeEvent[], exactKeys = false): Step[] {
  const steps: Step[] = [];
  // Keyed and keyless tables in first-appearance order, flushed at each barrier.
  let keyed = new Map<string, KeyedTable>();
  let keyless: Step[] = [];

  const flush = (): void => {
    for (const t of keyed.values()) steps.push(...keyedSteps(t));
    steps.push(...keyless);
    keyed = new Map();
    keyless = [];
  };

  // The previous event's keyed table: a run of one table's events looks it up once.
  let last: KeyedTable | undefined;
  for (const e of events) {
    if (e.op === Operation.Ddl) {
      flush();
      last = undefined;
      steps.push({ kind: 'ddl', event: e });
      continue;
    }
    if (e.key.length === 0) {
      addKeyless(keyless, { schema: e.schema, table: e.table }, e);
      continue;
    }
    let t = last;
    if (t === undefined || t.ref.table !== e.table || t.ref.schema !== e.schema) {
      const ref = { schema: e.schema, table: e.table };
      const id = refKey(ref);
      t = keyed.get(id);
      if (!t) {
        t = { ref, key: e.key, columns: e.columns, rows: new KeyedRows(exactKeys) };
        keyed.set(id, t);
      }
      last = t;
    }
    t.columns = e.columns;
    addKeyed(t, e);
  }
  flush();
  return steps;
}

/** No columns: what an update that keeps its key carries over (shared, never handed on: see addKeyed). */
const NOTHING: Row = Object.freeze({}) as Row;

function setLast(t: KeyedTable, k: RowKey, p: Pending): void {
  t.rows.setLast(k, p);
}

function addKeyed(t: KeyedTable, e: ChangeEvent): void {
  if (e.op === Operation.Delete) {
    const before = e.before ?? {};
    setLast(t, keyString(before, t.key), { del: true, row: pick(before, t.key) });
    return;
  }
  const after = e.after ?? {};
  const newKey = keyString(after, t.key);
  let carried: Row = NOTHING;
  if (e.op === Operation.Update && e.before) {
    const oldKey = keyString(e.before, t.key);
    if (oldKey !== newKey) {
      // The row moves: what we know of it under the old key travels with it.
      const prev = t.rows.get(oldKey);
      if (prev && !prev.del) carried = prev.row;
      setLast(t, oldKey, { del: true, row: pick(e.before, t.key) });
    }
  }
  const prev = t.rows.get(newKey);
  const base = prev && !prev.del ? prev.row : carried;
  const fresh = prev === undefined ? e.op === Operation.Insert : !prev.del && prev.fresh === true;
  // Images are never modified, so a row with nothing to merge is kept as it came.
  const next: Pending = { del: false, row: base === carried && !hasKeys(carried) ? after : { ...base, ...after }, fresh };
  // A key the batch has not had (most changes) is added at the end as it is; one it has moves there.
  setLast(t, newKey, next);
}

/**
 * The same of `columns` present in both rows: the column signature keyedSteps groups by depends on nothing else.
 * (Not a for-in over the rows' own keys: that made an array of keys per row, issue 12 allocation profile.)
 */
function samePresence(columns: ColumnType[], a: Row, b: Row): boolean {
  for (let i = 0; i < columns.length; i++) {
    const name = columns[i]!.name;
    if ((name in a) !== (name in b)) return false;
  }
  return true;
}

function hasKeys(r: Row): boolean {
  for (const k in r) return k.length >= 0;
  return false;
}

/** Upsert rows of one column signature, all fresh or all not (keyedSteps). */
interface Group { columns: ColumnType[]; rows: Row[]; fresh: boolean }

function keyedSteps(t: KeyedTable): Step[] {
  const keyCols = t.columns.filter((c) => t.key.includes(c.name));
  const keys: Row[] = [];
  const groups = new Map<string, Group>();
  // The column signature of the previous row, and its groups: consecutive rows of one shape skip building the
  // signature and looking their group up (a group key made per row was most of this function, issue 12 profile).
  let lastRow: Row | undefined; let lastSig = '';
  let lastFresh: Group | undefined; let lastUpdate: Group | undefined;
  // forEach, not for-of: no iterator result object per row (issue 12 allocation profile).
  t.rows.forEach((p) => {
    if (p.del) { keys.push(p.row); return; }
    if (lastRow === undefined || !samePresence(t.columns, lastRow, p.row)) {
      lastSig = t.columns.filter((c) => c.name in p.row).map((c) => c.name).join('\u0000');
      lastRow = p.row; lastFresh = undefined; lastUpdate = undefined;
    }
    const fresh = p.fresh === true;
    let g = fresh ? lastFresh : lastUpdate;
    if (!g) {
      const gk = fresh ? `f${lastSig}` : `u${lastSig}`;
      g = groups.get(gk);
      if (!g) groups.set(gk, (g = { columns: t.columns.filter((c) => c.name in p.row), rows: [], fresh }));
      if (fresh) lastFresh = g; else lastUpdate = g;
    }
    g.rows.push(p.row);
  });
  const out: Step[] = [];
  if (keys.length) out.push({ kind: 'delete', ref: t.ref, columns: keyCols, key: t.key, keys });
  for (const g of groups.values()) {
    out.push(g.fresh
      ? { kind: 'upsert', ref: t.ref, columns: g.columns, key: t.key, rows: g.rows, fresh: true }
      : { kind: 'upsert', ref: t.ref, columns: g.columns, key: t.key, rows: g.rows });
  }
  return out;
}

function addKeyless(out: Step[], ref: TableRef, e: ChangeEvent): void {
  const id = refKey(ref);
  if ((e.op === Operation.Update || e.op === Operation.Delete) && e.before) {
    const cols = e.columns.filter((c) => c.name in e.before!);
    out.push({ kind: 'delete-one', ref, columns: cols, row: e.before });
  }
  if ((e.op === Operation.Insert || e.op === Operation.Update) && e.after) {
    const cols = e.columns.filter((c) => c.name in e.after!);
    const last = out[out.length - 1];
    const sig = cols.map((c) => c.name).join('\u0000');
    if (last?.kind === 'insert' && refKey(last.ref) === id && last.columns.map((c) => c.name).join('\u0000') === sig) {
      last.rows.push(e.after);
    } else {
      out.push({ kind: 'insert', ref, columns: cols, rows: [e.after] });
    }
  }
}

/** Split rows into statements of at most `maxRows` rows and `maxParams` parameters. */
export function chunkRows<T>(rows: T[], paramsPerRow: number, maxRows: number, maxParams: number): T[][] {
  const per = Math.max(1, Math.min(maxRows, Math.floor(maxParams / Math.max(1, paramsPerRow))));
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += per) out.push(rows.slice(i, i + per));
  return out;
}
