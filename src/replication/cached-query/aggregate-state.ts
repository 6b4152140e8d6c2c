/**
 * The incremental result of `SELECT g.., agg(c).. FROM t WHERE p GROUP BY g..`.
 *
 * State per group: its row count and, per aggregated column, the count of
 * non-NULL values, their exact sum, and the current MIN and MAX. A change is
 * applied as "remove the before image if it matched WHERE, add the after
 * image if it matches", so an update moving a row between groups (or in or
 * out of WHERE) is a removal from one group and an addition to another.
 *
 * Invariants:
 * - count and sums are exact (decimals as scaled BigInts) at every feed
 *   position the upkeep has applied;
 * - removing a value equal to a group's MIN (MAX) marks that extreme stale:
 *   only that group is recomputed on the source (`staleGroups`). Such a
 *   recompute may see a slightly newer source state than the feed position;
 *   it converges because applying an insert to an extreme is idempotent and
 *   deleting the extreme marks it stale again;
 * - a group whose count reaches 0 disappears (without GROUP BY the single
 *   row stays, with COUNT 0 and NULL aggregates, like SQL).
 */
import type { ColumnType, Row, Value } from '../change-event.ts';
import { addDecimal, compareDecimal, decimalToString, divideDecimal, parseDecimal, subDecimal, ZERO, type Decimal } from './decimal.ts';
import type { IncrementalShape } from './query-plan.ts';
import type { RowPredicate, TextFold } from './where-filter.ts';

interface Cell {
  /** Non-NULL values. */
  n: number;
  sum: Decimal;
  /** Float columns sum as a double, like the source. */
  fsum: number;
  min: Value;
  max: Value;
  minStale: boolean;
  maxStale: boolean;
}

interface Group {
  values: Value[];
  count: number;
  cells: Cell[];
}

export interface ResultRows {
  columns: string[];
  rows: Record<string, Value>[];
  /** Row identity for diffs: the group key of each row. */
  keys: string[];
}

export interface SerializedState {
  groups: [string, { values: Value[]; count: number; cells: { n: number; sum: string; fsum: number; min: Value; max: Value; minStale?: boolean; maxStale?: boolean }[] }][];
}

const NULL_KEY = '\u0000null';

export class AggregateState {
  /** Distinct aggregated columns; a cell per column per group. */
  readonly cellColumns: string[];
  private groups = new Map<string, Group>();
  private readonly isFloat: boolean[];

  constructor(
    readonly shape: IncrementalShape,
    private readonly columns: Map<string, ColumnType>,
    private readonly predicate: RowPredicate,
    private readonly folds: Map<string, TextFold>,
    private readonly dialect: 'postgres' | 'mysql',
  ) {
    this.cellColumns = [...new Set(shape.aggregates.map((a) => a.column).filter((c): c is string => c !== null))];
    this.isFloat = this.cellColumns.map((c) => columns.get(c)?.kind === 'float');
    if (shape.groupBy.length === 0) this.groups.set('', this.emptyGroup([]));
  }

  /** Key of a row's group: folded like the column's collation, NULL distinct from every string. */
  groupKey(values: Value[]): string {
    return JSON.stringify(values.map((v, i) => {
      if (v === null || v === undefined) return NULL_KEY;
      const col = this.columns.get(this.shape.groupBy[i]!);
      if (col && (col.kind === 'int' || col.kind === 'decimal')) { const d = parseDecimal(v as string | number); return d ? decimalToString(normalise(d)) : String(v); }
      const fold = this.folds.get(this.shape.groupBy[i]!);
      return fold ? fold(String(v)) : typeof v === 'string' ? v : String(v);
    }));
  }

  private emptyGroup(values: Value[]): Group {
    return { values, count: 0, cells: this.cellColumns.map(() => ({ n: 0, sum: ZERO, fsum: 0, min: null, max: null, minStale: false, maxStale: false })) };
  }

  matches(row: Row | null): boolean {
    return !!row && this.predicate(row) === true;
  }

  /** Add (+1) or remove (-1) one row; returns the key of the group touched. */
  apply(row: Row, sign: 1 | -1): string {
    const values = this.shape.groupBy.map((g) => row[g] ?? null);
    const key = this.groupKey(values);
    let g = this.groups.get(key);
    if (!g) { g = this.emptyGroup(values); this.groups.set(key, g); }
    g.count += sign;
    this.cellColumns.forEach((c, i) => {
      const v = row[c] ?? null;
      if (v === null) return;
      const cell = g.cells[i]!;
      cell.n += sign;
      if (this.isFloat[i]) cell.fsum += sign * Number(v);
      else cell.sum = (sign > 0 ? addDecimal : subDecimal)(cell.sum, parseDecimal(v as string | number) ?? ZERO);
      if (sign > 0) {
        if (!cell.minStale && (cell.min === null || compareValues(v, cell.min) < 0)) cell.min = v;
        if (!cell.maxStale && (cell.max === null || compareValues(v, cell.max) > 0)) cell.max = v;
      } else {
        if (cell.min !== null && compareValues(v, cell.min) === 0) cell.minStale = true;
        if (cell.max !== null && compareValues(v, cell.max) === 0) cell.maxStale = true;
        if (cell.n === 0) { cell.min = null; cell.max = null; cell.minStale = false; cell.maxStale = false; cell.sum = ZERO; cell.fsum = 0; }
      }
    });
    if (g.count <= 0 && this.shape.groupBy.length > 0) this.groups.delete(key);
    return key;
  }

  /** Groups whose MIN or MAX lost its extreme and needs the source. */
  staleGroups(): { key: string; values: Value[] }[] {
    const out = [];
    for (const [key, g] of this.groups) {
      if (g.cells.some((c) => c.minStale || c.maxStale)) out.push({ key, values: g.values });
    }
    return out;
  }

  /** Set a group's extremes from the source (columns in cellColumns order); a group gone at the source gets NULLs. */
  setExtremes(key: string, extremes: { min: Value; max: Value }[] | undefined): void {
    const g = this.groups.get(key);
    if (!g) return;
    g.cells.forEach((c, i) => {
      if (c.minStale) c.min = extremes?.[i]?.min ?? null;
      if (c.maxStale) c.max = extremes?.[i]?.max ?? null;
      c.minStale = false; c.maxStale = false;
    });
  }

  /** Replace everything with a baseline read from the source: one entry per group with count, per cell n/sum/min/max. */
  load(rows: { values: Value[]; count: number; cells: { n: number; sum: Value; min: Value; max: Value }[] }[]): void {
    this.groups = new Map();
    if (this.shape.groupBy.length === 0) this.groups.set('', this.emptyGroup([]));
    for (const r of rows) {
      const key = this.shape.groupBy.length === 0 ? '' : this.groupKey(r.values);
      if (this.shape.groupBy.length > 0 && r.count === 0) continue;
      const g = this.emptyGroup(r.values);
      g.count = r.count;
      r.cells.forEach((c, i) => {
        const cell = g.cells[i]!;
        cell.n = c.n; cell.min = c.min; cell.max = c.max;
        if (this.isFloat[i]) cell.fsum = c.sum === null ? 0 : Number(c.sum);
        else cell.sum = c.sum === null ? ZERO : parseDecimal(c.sum as string | number) ?? ZERO;
      });
      this.groups.set(key, g);
    }
  }

  result(): ResultRows {
    const names = uniqueNames(this.shape.outputs.map((o) => o.name));
    const keys = [...this.groups.keys()].sort((a, b) => this.compareGroups(this.groups.get(a)!, this.groups.get(b)!));
    const rows = keys.map((k) => {
      const g = this.groups.get(k)!;
      const row: Record<string, Value> = {};
      this.shape.outputs.forEach((o, i) => {
        if (o.kind === 'group') { row[names[i]!] = g.values[this.shape.groupBy.indexOf(o.column)] ?? null; return; }
        row[names[i]!] = this.aggregateValue(g, o.index);
      });
      return row;
    });
    return { columns: names, rows, keys };
  }

  private aggregateValue(g: Group, index: number): Value {
    const a = this.shape.aggregates[index]!;
    if (a.fn === 'count' && a.column === null) return g.count;
    const ci = this.cellColumns.indexOf(a.column!);
    const cell = g.cells[ci]!;
    const float = this.isFloat[ci]!;
    switch (a.fn) {
      case 'count': return cell.n;
      case 'min': return cell.n === 0 ? null : cell.min;
      case 'max': return cell.n === 0 ? null : cell.max;
      case 'sum': {
        if (cell.n === 0) return null;
        if (float) return cell.fsum;
        const s = decimalToString(cell.sum);
        const n = Number(s);
        return cell.sum.scale === 0 && Number.isSafeInteger(n) ? n : s;
      }
      case 'avg': {
        if (cell.n === 0) return null;
        if (float) return cell.fsum / cell.n;
        // PostgreSQL shows at least 16 fraction digits for numeric AVG; MariaDB the column's scale + 4 (div_precision_increment).
        const scale = this.dialect === 'postgres' ? Math.max(16, cell.sum.scale) : cell.sum.scale + 4;
        return decimalToString(divideDecimal(cell.sum, BigInt(cell.n), scale));
      }
    }
  }

  private compareGroups(a: Group, b: Group): number {
    for (let i = 0; i < a.values.length; i++) {
      const x = a.values[i] ?? null; const y = b.values[i] ?? null;
      if (x === y) continue;
      if (x === null) return 1;
      if (y === null) return -1;
      const c = compareValues(x, y);
      if (c !== 0) return c;
    }
    return 0;
  }

  serialize(): SerializedState {
    return {
      groups: [...this.groups].map(([k, g]) => [k, {
        values: g.values, count: g.count,
        cells: g.cells.map((c) => ({ n: c.n, sum: decimalToString(c.sum), fsum: c.fsum, min: c.min, max: c.max, ...(c.minStale ? { minStale: true } : {}), ...(c.maxStale ? { maxStale: true } : {}) })),
      }]),
    };
  }

  restore(s: SerializedState): void {
    this.groups = new Map(s.groups.map(([k, g]) => [k, {
      values: g.values, count: g.count,
      cells: g.cells.map((c) => ({ n: c.n, sum: parseDecimal(c.sum) ?? ZERO, fsum: c.fsum, min: c.min, max: c.max, minStale: !!c.minStale, maxStale: !!c.maxStale })),
    }]));
  }
}

function normalise(d: Decimal): Decimal {
  let { units, scale } = d;
  while (scale > 0 && units % 10n === 0n) { units /= 10n; scale--; }
  return { units, scale };
}

/** Order of two non-NULL values of one column: numerically when both are numbers, else as text. */
export function compareValues(a: Value, b: Value): number {
  const x = typeof a === 'boolean' ? undefined : parseDecimal(a as string | number);
  const y = typeof b === 'boolean' ? undefined : parseDecimal(b as string | number);
  if (x && y) return compareDecimal(x, y);
  const s = String(a); const t = String(b);
  return s === t ? 0 : s < t ? -1 : 1;
}

export function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = seen.get(n) ?? 0;
    seen.set(n, k + 1);
    return k === 0 ? n : `${n}_${k + 1}`;
  });
}
