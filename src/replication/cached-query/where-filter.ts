/**
 * Compiles a cached query's WHERE clause into a row predicate with SQL's
 * three-valued logic, for the incremental upkeep. Only what can be judged
 * exactly like the source does is compiled: numeric comparisons (exact
 * decimals), equality and IN on text (folded like a case-insensitive
 * MariaDB collation when the column has one), date ordering, booleans,
 * IS [NOT] NULL, BETWEEN, AND/OR/NOT. Anything else (LIKE, casts, functions,
 * text ordering, which depends on the collation) throws UnsupportedWhere and
 * the query is re-run instead.
 */
import type { ColumnType, Row, Value } from '../change-event.ts';
import { compareDecimal, parseDecimal, type Decimal } from './decimal.ts';
import { columnName, functionName, type AstNode } from './query-plan.ts';

export class UnsupportedWhere extends Error {
  override readonly name = 'UnsupportedWhere';
}

export type RowPredicate = (row: Row) => boolean | null;
/** Text normalisation matching the column's collation (identity for binary/deterministic ones). */
export type TextFold = (s: string) => string;

type Cls = 'num' | 'text' | 'date' | 'bool';
type Cmp = Decimal | string | boolean;
interface Operand { cls: Cls; get(row: Row): Cmp | null }

const NUMERIC = new Set(['int', 'decimal', 'float']);
const TEXTUAL = new Set(['text', 'enum', 'uuid']);

export function classOf(col: ColumnType): Cls | undefined {
  if (NUMERIC.has(col.kind)) return 'num';
  if (TEXTUAL.has(col.kind)) return 'text';
  if (col.kind === 'date') return 'date';
  if (col.kind === 'bool') return 'bool';
  return undefined;
}

export function toComparable(v: Value, cls: Cls, fold: TextFold): Cmp | null {
  if (v === null || v === undefined) return null;
  switch (cls) {
    case 'num': {
      if (typeof v === 'boolean') return parseDecimal(v ? 1 : 0) ?? null;
      const d = parseDecimal(v as string | number);
      if (!d) throw new UnsupportedWhere(`non-finite number ${String(v)}`);
      return d;
    }
    case 'text': return fold(String(v));
    case 'date': return String(v);
    case 'bool': return typeof v === 'boolean' ? v : v === 1 || v === '1' || v === 't' || v === 'true';
  }
}

function compare(a: Cmp, b: Cmp, cls: Cls): number {
  if (cls === 'num') return compareDecimal(a as Decimal, b as Decimal);
  if (cls === 'bool') return a === b ? 0 : a ? 1 : -1;
  return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
}

export function compileWhere(where: AstNode | null, columns: Map<string, ColumnType>, folds: Map<string, TextFold>): RowPredicate {
  if (!where) return () => true;
  return compileBool(where, columns, folds);
}

function literal(n: AstNode): { value: Value; kind: 'num' | 'str' | 'bool' | 'null' } | undefined {
  switch (n.type) {
    case 'number': return { value: n.value as number | string, kind: 'num' };
    case 'single_quote_string': case 'string': case 'natural_string': return { value: String(n.value), kind: 'str' };
    case 'bool': case 'boolean': return { value: Boolean(n.value), kind: 'bool' };
    case 'null': return { value: null, kind: 'null' };
    case 'unary_expr':
      if (n.operator === '-' && n.expr?.type === 'number') return { value: typeof n.expr.value === 'number' ? -n.expr.value : `-${n.expr.value}`, kind: 'num' };
      return undefined;
    default: return undefined;
  }
}

function operand(n: AstNode, cls: Cls | undefined, columns: Map<string, ColumnType>, folds: Map<string, TextFold>): Operand {
  if (n.type === 'column_ref') {
    const name = columnName(n);
    const col = columns.get(name);
    if (!col) throw new UnsupportedWhere(`unknown column ${name}`);
    const c = classOf(col);
    if (!c) throw new UnsupportedWhere(`column ${name} of type ${col.sourceType} is not compared incrementally`);
    const fold = folds.get(name) ?? ((s: string) => s);
    return { cls: c, get: (row) => toComparable(row[name] ?? null, c, fold) };
  }
  const lit = literal(n);
  if (!lit) throw new UnsupportedWhere(`expression of type ${String(n.type)}`);
  if (lit.kind === 'null') return { cls: cls ?? 'text', get: () => null };
  const target: Cls = cls ?? (lit.kind === 'num' ? 'num' : lit.kind === 'bool' ? 'bool' : 'text');
  if (target === 'num' && lit.kind !== 'num') throw new UnsupportedWhere('number compared with a non-number');
  if (target === 'bool' && lit.kind !== 'bool' && lit.kind !== 'num') throw new UnsupportedWhere('boolean compared with a non-boolean');
  if ((target === 'text' || target === 'date') && lit.kind !== 'str') throw new UnsupportedWhere('text compared with a non-string');
  if (target === 'date' && !/^\d{4}-\d{2}-\d{2}$/.test(String(lit.value))) throw new UnsupportedWhere('date compared with a non-ISO date literal');
  // Literals fold like the column they meet (a case-insensitive collation compares both sides folded).
  return { cls: target, get: () => null, ...{ value: lit.value } } as Operand & { value: Value };
}

function bind(a: AstNode, b: AstNode, columns: Map<string, ColumnType>, folds: Map<string, TextFold>): [Operand, Operand] {
  const colSide = a.type === 'column_ref' ? a : b.type === 'column_ref' ? b : undefined;
  if (!colSide) throw new UnsupportedWhere('comparison without a column');
  const col = operand(colSide, undefined, columns, folds);
  const other = colSide === a ? b : a;
  let o = operand(other, col.cls, columns, folds) as Operand & { value?: Value };
  if (other.type !== 'column_ref') {
    const fold = folds.get(columnName(colSide)) ?? ((s: string) => s);
    const fixed = toComparable(o.value ?? null, col.cls, fold);
    o = { cls: col.cls, get: () => fixed };
  } else if (o.cls !== col.cls) throw new UnsupportedWhere('columns of different types compared');
  return colSide === a ? [col, o] : [o, col];
}

const and3 = (x: boolean | null, y: boolean | null) => (x === false || y === false ? false : x === null || y === null ? null : true);
const or3 = (x: boolean | null, y: boolean | null) => (x === true || y === true ? true : x === null || y === null ? null : false);
const not3 = (x: boolean | null) => (x === null ? null : !x);

function compileBool(n: AstNode, columns: Map<string, ColumnType>, folds: Map<string, TextFold>): RowPredicate {
  if (n.type === 'function' && functionName(n) === 'not') {
    const inner = compileBool(n.args?.value?.[0] ?? n.args?.expr, columns, folds);
    return (r) => not3(inner(r));
  }
  if (n.type === 'unary_expr' && String(n.operator).toUpperCase() === 'NOT') {
    const inner = compileBool(n.expr, columns, folds);
    return (r) => not3(inner(r));
  }
  if (n.type === 'column_ref') {
    const o = operand(n, undefined, columns, folds);
    if (o.cls !== 'bool') throw new UnsupportedWhere('a non-boolean column used as a condition');
    return (r) => { const v = o.get(r); return v === null ? null : Boolean(v); };
  }
  if (n.type !== 'binary_expr') throw new UnsupportedWhere(`condition of type ${String(n.type)}`);
  const op = String(n.operator).toUpperCase();
  if (op === 'AND' || op === 'OR') {
    const l = compileBool(n.left, columns, folds);
    const r = compileBool(n.right, columns, folds);
    return op === 'AND' ? (row) => and3(l(row), r(row)) : (row) => or3(l(row), r(row));
  }
  if (op === 'IS' || op === 'IS NOT') {
    const lit = literal(n.right);
    if (!lit || (lit.kind !== 'null' && lit.kind !== 'bool')) throw new UnsupportedWhere('IS with something other than NULL/TRUE/FALSE');
    const o = operand(n.left, undefined, columns, folds);
    const test = lit.kind === 'null' ? (v: Cmp | null) => v === null : (v: Cmp | null) => v === lit.value;
    return op === 'IS' ? (r) => test(o.get(r)) : (r) => !test(o.get(r));
  }
  if (op === 'IN' || op === 'NOT IN') {
    if (n.right?.type !== 'expr_list') throw new UnsupportedWhere('IN with a subquery');
    const items = (n.right.value as AstNode[]).map((x) => bind(n.left, x, columns, folds));
    const cls = items[0]?.[0].cls ?? 'text';
    const f: RowPredicate = (r) => {
      let out: boolean | null = false;
      for (const [a, b] of items) {
        const x = a.get(r); const y = b.get(r);
        out = or3(out, x === null || y === null ? null : compare(x, y, cls) === 0);
        if (out === true) return true;
      }
      return out;
    };
    return op === 'IN' ? f : (r) => not3(f(r));
  }
  if (op === 'BETWEEN' || op === 'NOT BETWEEN') {
    const [lo, hi] = (n.right?.value ?? []) as AstNode[];
    if (!lo || !hi) throw new UnsupportedWhere('malformed BETWEEN');
    const [a, l] = bind(n.left, lo, columns, folds);
    const [, h] = bind(n.left, hi, columns, folds);
    if (a.cls === 'text') throw new UnsupportedWhere('BETWEEN on text depends on the collation');
    const f: RowPredicate = (r) => {
      const x = a.get(r); const y = l.get(r); const z = h.get(r);
      const ge = x === null || y === null ? null : compare(x, y, a.cls) >= 0;
      const le = x === null || z === null ? null : compare(x, z, a.cls) <= 0;
      return and3(ge, le);
    };
    return op === 'BETWEEN' ? f : (r) => not3(f(r));
  }
  const cmp: Record<string, (c: number) => boolean> = {
    '=': (c) => c === 0, '<>': (c) => c !== 0, '!=': (c) => c !== 0, '<': (c) => c < 0, '<=': (c) => c <= 0, '>': (c) => c > 0, '>=': (c) => c >= 0,
  };
  const test = cmp[op];
  if (!test) throw new UnsupportedWhere(`operator ${op}`);
  const [a, b] = bind(n.left, n.right, columns, folds);
  if (a.cls === 'text' && !['=', '<>', '!='].includes(op)) throw new UnsupportedWhere('ordering text depends on the collation');
  return (r) => {
    const x = a.get(r); const y = b.get(r);
    return x === null || y === null ? null : test(compare(x, y, a.cls));
  };
}
