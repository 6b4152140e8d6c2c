/**
 * Row transforms of pipeline components: Filter, Map and Aggregate. Each
 * is a small stateful object: `push` batches of rows in, `finish` for the
 * output schema (and, for Aggregate, the rows). Values keep the change-event
 * representation (change-event.ts); computed values are numbers, strings,
 * booleans or null, and their column type is inferred from what they were.
 */
import type { ColumnKind, ColumnType, Row, Value } from '../change-event.ts';
import { ExpressionError, RowExpression, compare } from './expression.ts';

/** Columns and key of a stream of rows. */
export interface RowSchema {
  columns: ColumnType[];
  key: string[];
}

/** A component's parameters do not fit its input. */
export class TransformError extends Error {
  override readonly name = 'TransformError';
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

export function column(name: string, kind: ColumnKind): ColumnType {
  switch (kind) {
    case 'int': return { name, kind, sourceType: 'bigint', size: 8 };
    case 'float': return { name, kind, sourceType: 'double precision', size: 8 };
    case 'bool': return { name, kind, sourceType: 'boolean' };
    case 'decimal': return { name, kind, sourceType: 'numeric' };
    default: return { name, kind: 'text', sourceType: 'text' };
  }
}

/** Tracks what kinds of values a computed column produced. */
class KindTracker {
  private seen = new Set<'int' | 'float' | 'bool' | 'text'>();
  add(v: Value): void {
    if (v === null) return;
    if (typeof v === 'boolean') this.seen.add('bool');
    else if (typeof v === 'number') this.seen.add(Number.isInteger(v) ? 'int' : 'float');
    else this.seen.add('text');
  }
  kind(): ColumnKind {
    if (this.seen.has('text') || (this.seen.has('bool') && this.seen.size > 1)) return 'text';
    if (this.seen.has('float')) return 'float';
    if (this.seen.has('int')) return 'int';
    if (this.seen.has('bool')) return 'bool';
    return 'text';
  }
}

export interface RowTransform {
  push(rows: Row[]): Row[];
  /** Rows held until the end (Aggregate) and the output schema. */
  finish(): { rows: Row[]; schema: RowSchema };
}

// ------------------------------------------------------------------ Filter

export interface FilterParams { where: string }

export function filterTransform(input: RowSchema, params: FilterParams): RowTransform {
  const expr = RowExpression.parse(params.where, input.columns.map((c) => c.name));
  return {
    push: (rows) => rows.filter((r) => expr.test(r)),
    finish: () => ({ rows: [], schema: input }),
  };
}

// ------------------------------------------------------------------ Map

export interface MapParams {
  /** Columns to keep, in order; default all. */
  select?: string[];
  /** old name -> new name, applied to kept columns. */
  rename?: Record<string, string>;
  /** new column -> expression over the input row. */
  compute?: Record<string, string>;
}

export function mapTransform(input: RowSchema, params: MapParams): RowTransform {
  const names = input.columns.map((c) => c.name);
  const select = params.select ?? names;
  for (const s of select) if (!names.includes(s)) throw new TransformError(`select: unknown column "${s}" (columns: ${names.join(', ')})`);
  const rename = params.rename ?? {};
  for (const [from, to] of Object.entries(rename)) {
    if (!select.includes(from)) throw new TransformError(`rename: column "${from}" is not selected`);
    if (typeof to !== 'string' || !NAME_RE.test(to)) throw new TransformError(`rename: "${String(to)}" is not a valid column name`);
  }
  const computed = Object.entries(params.compute ?? {}).map(([name, text]) => {
    if (!NAME_RE.test(name)) throw new TransformError(`compute: "${name}" is not a valid column name`);
    return { name, expr: RowExpression.parse(String(text), names), kinds: new KindTracker() };
  });
  const outNames = [...select.map((s) => rename[s] ?? s), ...computed.map((c) => c.name)];
  const dup = outNames.find((n, i) => outNames.indexOf(n) !== i);
  if (dup) throw new TransformError(`output column "${dup}" appears twice`);
  return {
    push: (rows) => rows.map((r) => {
      const out: Row = {};
      for (const s of select) out[rename[s] ?? s] = r[s] ?? null;
      for (const c of computed) { const v = c.expr.evaluate(r); c.kinds.add(v); out[c.name] = v; }
      return out;
    }),
    finish: () => {
      const byName = new Map(input.columns.map((c) => [c.name, c]));
      const columns = [
        ...select.map((s) => ({ ...byName.get(s)!, name: rename[s] ?? s })),
        ...computed.map((c) => column(c.name, c.kinds.kind())),
      ];
      const keyKept = input.key.length > 0 && input.key.every((k) => select.includes(k));
      return { rows: [], schema: { columns, key: keyKept ? input.key.map((k) => rename[k] ?? k) : [] } };
    },
  };
}

// ------------------------------------------------------------------ Aggregate

export type AggregateFn = 'count' | 'sum' | 'min' | 'max' | 'avg';
export interface AggregateSpec { fn: AggregateFn; column?: string }
export interface AggregateParams {
  group_by?: string[];
  /** output column -> "count(*)" | "sum(col)" | {fn, column} */
  aggregates: Record<string, string | AggregateSpec>;
}

const AGG_RE = /^\s*(count|sum|min|max|avg)\s*\(\s*(\*|`[^`]+`|[A-Za-z_][A-Za-z0-9_$]*)\s*\)\s*$/i;

export function parseAggregate(out: string, spec: string | AggregateSpec): AggregateSpec {
  if (typeof spec === 'string') {
    const m = AGG_RE.exec(spec);
    if (!m) throw new TransformError(`aggregate "${out}": "${spec}" is not count(*), count(col), sum(col), min(col), max(col) or avg(col)`);
    const fn = m[1]!.toLowerCase() as AggregateFn;
    const col = m[2] === '*' ? undefined : m[2]!.replace(/`/g, '');
    if (!col && fn !== 'count') throw new TransformError(`aggregate "${out}": ${fn}(*) needs a column`);
    return { fn, column: col };
  }
  if (!spec || !['count', 'sum', 'min', 'max', 'avg'].includes(spec.fn)) throw new TransformError(`aggregate "${out}": fn must be count, sum, min, max or avg`);
  if (!spec.column && spec.fn !== 'count') throw new TransformError(`aggregate "${out}": ${spec.fn} needs a column`);
  return spec;
}

interface Acc { count: number; sum: number; bigSum: bigint; exactInt: boolean; seen: number; best: Value; dec: { units: bigint; scale: number } }

/** Exact decimal addition: units at a scale that grows to the longest fraction seen. */
function addDecimal(acc: { units: bigint; scale: number }, v: Value): boolean {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(v).trim());
  if (!m) return false;
  const frac = m[3] ?? '';
  if (frac.length > acc.scale) { acc.units *= 10n ** BigInt(frac.length - acc.scale); acc.scale = frac.length; }
  const units = BigInt(m[2]! + frac.padEnd(acc.scale, '0'));
  acc.units += m[1] ? -units : units;
  return true;
}

function decimalText(acc: { units: bigint; scale: number }): string {
  if (acc.scale === 0) return acc.units.toString();
  const neg = acc.units < 0n;
  const digits = (neg ? -acc.units : acc.units).toString().padStart(acc.scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -acc.scale)}.${digits.slice(-acc.scale)}`;
}

export function aggregateTransform(input: RowSchema, params: AggregateParams): RowTransform {
  const names = input.columns.map((c) => c.name);
  const groupBy = params.group_by ?? [];
  for (const g of groupBy) if (!names.includes(g)) throw new TransformError(`group_by: unknown column "${g}" (columns: ${names.join(', ')})`);
  const entries = Object.entries(params.aggregates ?? {});
  if (!entries.length) throw new TransformError('aggregates: at least one output column is required');
  const aggs = entries.map(([out, s]) => {
    if (!NAME_RE.test(out)) throw new TransformError(`aggregates: "${out}" is not a valid column name`);
    if (groupBy.includes(out)) throw new TransformError(`aggregates: "${out}" is also a group_by column`);
    const spec = parseAggregate(out, s);
    if (spec.column && !names.includes(spec.column)) throw new TransformError(`aggregate "${out}": unknown column "${spec.column}"`);
    return { out, ...spec, kind: input.columns.find((c) => c.name === spec.column)?.kind };
  });
  const groups = new Map<string, { key: Row; accs: Acc[] }>();
  const fresh = (): Acc[] => aggs.map(() => ({ count: 0, sum: 0, bigSum: 0n, exactInt: true, seen: 0, best: null, dec: { units: 0n, scale: 0 } }));
  return {
    push: (rows) => {
      for (const r of rows) {
        const keyRow: Row = {};
        for (const g of groupBy) keyRow[g] = r[g] ?? null;
        const k = JSON.stringify(groupBy.map((g) => keyRow[g]));
        let g = groups.get(k);
        if (!g) { g = { key: keyRow, accs: fresh() }; groups.set(k, g); }
        aggs.forEach((a, i) => {
          const acc = g!.accs[i]!;
          if (a.fn === 'count') { if (!a.column || r[a.column] != null) acc.count++; return; }
          const v = r[a.column!];
          if (v == null) return;
          acc.seen++;
          if (a.fn === 'sum' || a.fn === 'avg') {
            acc.sum += Number(v);
            if (a.kind === 'int' && acc.exactInt) acc.bigSum += BigInt(typeof v === 'number' ? Math.trunc(v) : String(v));
            else if (a.kind === 'decimal' && acc.exactInt) acc.exactInt = addDecimal(acc.dec, v);
            else acc.exactInt = false;
          } else if (acc.best === null || (a.fn === 'min' ? compare(v, acc.best) < 0 : compare(v, acc.best) > 0)) {
            acc.best = v;
          }
        });
      }
      return [];
    },
    finish: () => {
      const out: Row[] = [];
      if (groups.size === 0 && groupBy.length === 0) groups.set('[]', { key: {}, accs: fresh() });
      for (const g of groups.values()) {
        const row: Row = { ...g.key };
        aggs.forEach((a, i) => {
          const acc = g.accs[i]!;
          switch (a.fn) {
            case 'count': row[a.out] = acc.count; break;
            case 'sum': row[a.out] = acc.seen === 0 ? null : a.kind === 'int' && acc.exactInt ? bigOut(acc.bigSum) : a.kind === 'decimal' && acc.exactInt ? decimalText(acc.dec) : acc.sum; break;
            case 'avg': row[a.out] = acc.seen === 0 ? null : acc.sum / acc.seen; break;
            default: row[a.out] = acc.best;
          }
        });
        out.push(row);
      }
      const byName = new Map(input.columns.map((c) => [c.name, c]));
      const columns: ColumnType[] = [
        ...groupBy.map((g) => byName.get(g)!),
        ...aggs.map((a) => {
          if (a.fn === 'count') return column(a.out, 'int');
          if (a.fn === 'avg') return column(a.out, 'float');
          if (a.fn === 'sum' && a.kind === 'int') return { ...column(a.out, 'decimal'), precision: 38, scale: 0 };
          if (a.fn === 'sum' && a.kind === 'decimal') {
            const scale = Math.max(0, ...[...groups.values()].map((g) => g.accs[aggs.indexOf(a)]!.dec.scale), byName.get(a.column!)?.scale ?? 0);
            return { ...column(a.out, 'decimal'), precision: 38, scale };
          }
          if (a.fn === 'sum') return column(a.out, 'float');
          return { ...byName.get(a.column!)!, name: a.out };
        }),
      ];
      // Sums of integers are exact decimals; keep them as strings like the decimal kind expects.
      for (const a of aggs) if (a.fn === 'sum' && a.kind === 'int') for (const r of out) if (r[a.out] !== null) r[a.out] = String(r[a.out]);
      return { rows: out, schema: { columns, key: groupBy.length && groupBy.every((g) => out.every((r) => r[g] !== null)) ? groupBy : [] } };
    },
  };
}

function bigOut(n: bigint): Value {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

export { ExpressionError };
