/**
 * The row expression language of pipeline components (Filter predicates,
 * Map computed columns). Text is parsed by jsep into an AST, the AST is
 * checked against a whitelist once (columns, operators, functions), and
 * evaluation walks that AST: nothing is ever compiled or eval'd, there is no
 * member access, no assignment, no call of anything but the functions below.
 *
 * Syntax (SQL and JavaScript spellings both work):
 *   literals     12  1.5  'text'  "text"  true  false  null  [1, 2, 3]
 *   columns      amount   `odd name`   (backquotes for any other name)
 *   comparison   =  ==  !=  <>  <  <=  >  >=  in [..]  like 'a%'
 *   logic        and  or  not  &&  ||  !   (AND OR NOT too)
 *   arithmetic   +  -  *  /  %   (strings: + concatenates)
 *   functions    lower upper length trim abs round floor ceil coalesce
 *                concat substr isnull isnotnull number string
 *
 * NULL follows SQL where it matters for filters: a comparison with null is
 * null (so the row is not kept), except `x == null` / `x != null`, which test
 * for null. Arithmetic on numbers is double precision.
 */
import jsep from 'jsep';
import type { Row, Value } from '../change-event.ts';

/** An expression that does not parse or uses something outside the language. */
export class ExpressionError extends Error {
  override readonly name = 'ExpressionError';
  constructor(message: string, readonly expression: string) { super(message); }
}

jsep.addBinaryOp('=', 6);
jsep.addBinaryOp('<>', 6);
for (const [op, prec] of [['and', 2], ['AND', 2], ['or', 1], ['OR', 1], ['in', 7], ['IN', 7], ['like', 6], ['LIKE', 6]] as const) jsep.addBinaryOp(op, prec);
jsep.addUnaryOp('not');
jsep.addUnaryOp('NOT');

type Node = jsep.Expression;
type V = Value | V[] | undefined;

const FUNCTIONS: Record<string, { args: [number, number]; fn: (a: V[]) => V }> = {
  lower: { args: [1, 1], fn: ([s]) => (s == null ? null : String(s).toLowerCase()) },
  upper: { args: [1, 1], fn: ([s]) => (s == null ? null : String(s).toUpperCase()) },
  length: { args: [1, 1], fn: ([s]) => (s == null ? null : String(s).length) },
  trim: { args: [1, 1], fn: ([s]) => (s == null ? null : String(s).trim()) },
  abs: { args: [1, 1], fn: ([n]) => (n == null ? null : Math.abs(num(n))) },
  round: { args: [1, 2], fn: ([n, d]) => { if (n == null) return null; const f = 10 ** num(d ?? 0); return Math.round(num(n) * f) / f; } },
  floor: { args: [1, 1], fn: ([n]) => (n == null ? null : Math.floor(num(n))) },
  ceil: { args: [1, 1], fn: ([n]) => (n == null ? null : Math.ceil(num(n))) },
  coalesce: { args: [1, 64], fn: (a) => a.find((v) => v != null) ?? null },
  concat: { args: [1, 64], fn: (a) => a.map((v) => (v == null ? '' : String(v))).join('') },
  substr: { args: [2, 3], fn: ([s, from, len]) => (s == null ? null : String(s).substr(num(from) - 1, len == null ? undefined : num(len))) },
  isnull: { args: [1, 1], fn: ([v]) => v == null },
  isnotnull: { args: [1, 1], fn: ([v]) => v != null },
  number: { args: [1, 1], fn: ([v]) => (v == null || v === '' ? null : num(v)) },
  string: { args: [1, 1], fn: ([v]) => (v == null ? null : String(v)) },
};

const BINARY = new Set(['=', '==', '===', '!=', '!==', '<>', '<', '<=', '>', '>=', '+', '-', '*', '/', '%', '&&', '||', 'and', 'AND', 'or', 'OR', 'in', 'IN', 'like', 'LIKE']);
const UNARY = new Set(['!', 'not', 'NOT', '-', '+']);

function num(v: V): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  const n = Number(v);
  return n;
}

/** A parsed, whitelisted expression; evaluate it against rows. */
export class RowExpression {
  /** Column names the expression reads. */
  readonly columns: string[];

  private constructor(readonly text: string, private readonly ast: Node, columns: Set<string>) {
    this.columns = [...columns];
  }

  /** Parse and check; throws ExpressionError naming what is not allowed. */
  static parse(text: string, knownColumns?: readonly string[]): RowExpression {
    if (typeof text !== 'string' || !text.trim()) throw new ExpressionError('expression is empty', String(text));
    // Backquoted names become identifiers jsep accepts.
    const names: string[] = [];
    const prepared = text.replace(/`([^`]*)`/g, (_m, name: string) => { names.push(name); return `__col${names.length - 1}__`; });
    let ast: Node;
    try { ast = jsep(prepared); } catch (err) { throw new ExpressionError(`cannot parse "${text}": ${(err as Error).message}`, text); }
    const cols = new Set<string>();
    const check = (n: Node): void => {
      switch (n.type) {
        case 'Literal': return;
        case 'Identifier': {
          const raw = n.name as string;
          const m = /^__col(\d+)__$/.exec(raw);
          const name = m ? names[Number(m[1])]! : raw;
          if (!m && (name === 'true' || name === 'false' || name === 'null')) return;
          (n as unknown as { name: string }).name = name;
          if (knownColumns && !knownColumns.includes(name)) throw new ExpressionError(`unknown column "${name}" in "${text}" (columns: ${knownColumns.join(', ')})`, text);
          cols.add(name);
          return;
        }
        case 'BinaryExpression':
          if (!BINARY.has(n.operator as string)) throw new ExpressionError(`operator "${n.operator}" is not allowed in "${text}"`, text);
          check(n.left as Node); check(n.right as Node); return;
        case 'UnaryExpression':
          if (!UNARY.has(n.operator as string)) throw new ExpressionError(`operator "${n.operator}" is not allowed in "${text}"`, text);
          check(n.argument as Node); return;
        case 'ArrayExpression':
          for (const e of n.elements as Node[]) check(e); return;
        case 'CallExpression': {
          const callee = n.callee as Node;
          const fname = callee.type === 'Identifier' ? String(callee.name).toLowerCase() : '';
          const f = FUNCTIONS[fname];
          if (!f) throw new ExpressionError(`function "${callee.type === 'Identifier' ? callee.name : '?'}" is not allowed in "${text}" (allowed: ${Object.keys(FUNCTIONS).join(', ')})`, text);
          const args = n.arguments as Node[];
          if (args.length < f.args[0] || args.length > f.args[1]) throw new ExpressionError(`${fname} takes ${f.args[0]}..${f.args[1]} arguments in "${text}"`, text);
          (callee as unknown as { name: string }).name = fname;
          for (const a of args) check(a);
          return;
        }
        case 'Compound': throw new ExpressionError(`one expression expected in "${text}"`, text);
        default: throw new ExpressionError(`${n.type} is not allowed in "${text}"`, text);
      }
    };
    check(ast);
    return new RowExpression(text, ast, cols);
  }

  evaluate(row: Row): Value {
    const v = this.eval(this.ast, row);
    return Array.isArray(v) ? JSON.stringify(v) : v === undefined ? null : v;
  }

  /** A filter keeps the row only when the predicate is true (null and false drop it). */
  test(row: Row): boolean {
    return this.eval(this.ast, row) === true;
  }

  private eval(n: Node, row: Row): V {
    switch (n.type) {
      case 'Literal': return n.value as Value;
      case 'Identifier': {
        const name = n.name as string;
        if (name === 'true') return true;
        if (name === 'false') return false;
        if (name === 'null') return null;
        return Object.prototype.hasOwnProperty.call(row, name) ? row[name] : null;
      }
      case 'ArrayExpression': return (n.elements as Node[]).map((e) => this.eval(e, row));
      case 'UnaryExpression': {
        const a = this.eval(n.argument as Node, row);
        switch (n.operator) {
          case '-': return a == null ? null : -num(a);
          case '+': return a == null ? null : num(a);
          default: return a == null ? null : !truthy(a);
        }
      }
      case 'CallExpression': {
        const f = FUNCTIONS[(n.callee as { name: string }).name]!;
        return f.fn((n.arguments as Node[]).map((a) => this.eval(a, row)));
      }
      case 'BinaryExpression': return this.binary(n, row);
      default: return null;
    }
  }

  private binary(n: Node, row: Row): V {
    const op = (n.operator as string).toLowerCase();
    if (op === '&&' || op === 'and') {
      const l = this.eval(n.left as Node, row);
      if (l != null && !truthy(l)) return false;
      const r = this.eval(n.right as Node, row);
      if (r != null && !truthy(r)) return false;
      return l == null || r == null ? null : true;
    }
    if (op === '||' || op === 'or') {
      const l = this.eval(n.left as Node, row);
      if (l != null && truthy(l)) return true;
      const r = this.eval(n.right as Node, row);
      if (r != null && truthy(r)) return true;
      return l == null || r == null ? null : false;
    }
    const l = this.eval(n.left as Node, row);
    const r = this.eval(n.right as Node, row);
    const nullLiteral = (x: Node) => x.type === 'Literal' ? x.value === null : x.type === 'Identifier' && x.name === 'null';
    if (op === '==' || op === '=' || op === '===') {
      if (nullLiteral(n.right as Node) || nullLiteral(n.left as Node)) return l == null && r == null;
      return l == null || r == null ? null : compare(l, r) === 0;
    }
    if (op === '!=' || op === '!==' || op === '<>') {
      if (nullLiteral(n.right as Node) || nullLiteral(n.left as Node)) return !(l == null && r == null);
      return l == null || r == null ? null : compare(l, r) !== 0;
    }
    if (l == null || r == null) return null;
    switch (op) {
      case '<': return compare(l, r) < 0;
      case '<=': return compare(l, r) <= 0;
      case '>': return compare(l, r) > 0;
      case '>=': return compare(l, r) >= 0;
      case 'in': return Array.isArray(r) ? r.some((x) => x != null && compare(l, x) === 0) : compare(l, r) === 0;
      case 'like': return likeRegex(String(r)).test(String(l));
      case '+': return typeof l === 'string' && typeof r === 'string' && !(isNumeric(l) && isNumeric(r)) ? l + r : num(l) + num(r);
      case '-': return num(l) - num(r);
      case '*': return num(l) * num(r);
      case '/': return num(r) === 0 ? null : num(l) / num(r);
      case '%': return num(r) === 0 ? null : num(l) % num(r);
      default: return null;
    }
  }
}

function truthy(v: V): boolean {
  return Array.isArray(v) ? v.length > 0 : !!v;
}

function isNumeric(v: V): boolean {
  return typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)));
}

/** Numbers (and numeric strings, as decimals and big ints travel) compare as numbers, the rest as strings. */
export function compare(a: V, b: V): number {
  if (isNumeric(a) && isNumeric(b)) { const x = num(a); const y = num(b); return x < y ? -1 : x > y ? 1 : 0; }
  const x = String(a); const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const likeCache = new Map<string, RegExp>();
function likeRegex(pattern: string): RegExp {
  let re = likeCache.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.');
    re = new RegExp(`^${body}$`, 's');
    if (likeCache.size < 1000) likeCache.set(pattern, re);
  }
  return re;
}
