/**
 * Column and row controls of a job's tables (issue 15): per table, columns
 * left out (`exclude`), replaced by a fixed text (`mask`) or by the
 * HMAC-SHA256 of their value with the job's salt (`hash`), and a row filter
 * (`where`, the SQL subset the cached queries judge incrementally:
 * where-filter.ts). One compiled `TableControl` serves the snapshot (rows and
 * the destination's table shape) and the stream (change events, before the
 * feed), so the destination and every feed reader see the same thing.
 *
 * Change semantics through the filter (as pipelines' Filter, capture-stream.ts):
 *
 *   insert: kept when the new row passes
 *   delete: kept unless the old row is known and does not pass
 *   update: old in,  new in  -> update
 *           old out, new in  -> insert (the row enters the filter)
 *           old in,  new out -> delete (the row leaves it)
 *           old out, new out -> dropped
 *   An old row that is not known (PostgreSQL without REPLICA IDENTITY FULL:
 *   no image, or the key only) counts as "in": an update into the filter is
 *   an upsert and one out of it a key delete, both idempotent downstream.
 *
 * A WHERE column missing from a partial image (PostgreSQL leaves unchanged
 * TOAST values out) cannot be judged: the image counts as passing.
 */
import { createHmac } from 'node:crypto';
import { Operation, type CapturedTransaction, type ChangeEvent, type ColumnKind, type ColumnType, type Row, type Value } from '../change-event.ts';
import { canonValue } from '../verify/value-canon.ts';
import type { TableInfo } from '../table-info.ts';
import { controlsFor, type ColumnControls, type TableFilter } from '../../domain/table-filter.ts';
import { compileWhere, UnsupportedWhere, type RowPredicate } from '../cached-query/where-filter.ts';
import { WHERE_PREFIX, columnName, parseWhereClause, type AstNode, type SqlDialect } from '../cached-query/query-plan.ts';
import { QueryRefusedError } from '../cached-query/query-errors.ts';
import { FatalError } from '../errors.ts';
import { classifyDdl } from '../apply/ddl.ts';

/** What a masked value reads. */
export const MASK_TEXT = '****';
/** Length of a hashed value: HMAC-SHA256 in lower-case hex. */
export const HASH_CHARS = 64;

/** Which part of a table's controls is wrong; the message names the column or the reason. */
export enum ControlProblem {
  UnknownColumn = 'UNKNOWN_COLUMN',
  KeyColumn = 'KEY_COLUMN',
  Conflict = 'CONFLICT',
  Where = 'WHERE',
  NoSalt = 'NO_SALT',
  /** A controlled column renamed at the source: its values would flow in the clear under the new name. */
  Renamed = 'RENAMED',
}

/** A table's controls do not fit the table (or the WHERE cannot be judged): fatal for a running job. */
export class ControlError extends FatalError {
  override readonly name = 'ControlError';
  constructor(readonly problem: ControlProblem, message: string, readonly field: 'columns' | 'where') {
    super(message);
  }
}

/**
 * The text a value is hashed as: its engine-neutral form (verify's
 * value-canon.ts), so that the snapshot's and the stream's representation of
 * one value, and both source engines', hash alike: text as is, integers in
 * decimal, decimals without trailing zeros ("12.5"), booleans "t"/"f",
 * times "YYYY-MM-DD HH:MM:SS[.f]" (UTC for timestamptz), JSON with sorted keys.
 */
export function canonicalText(v: Exclude<Value, null>, kind: ColumnKind = 'text'): string {
  return canonValue(kind, v) ?? '';
}

/** HMAC-SHA256(salt, canonical text of the value) in hex; null stays null. */
export function hashValue(salt: string, v: Value, kind: ColumnKind = 'text'): string | null {
  if (v === null || v === undefined) return null;
  return createHmac('sha256', salt).update(canonicalText(v, kind), 'utf8').digest('hex');
}

export interface ControlOptions {
  /** The job's hashing salt; required when a table hashes a column. */
  salt?: string;
  /** The source's SQL dialect, for parsing `where`. */
  dialect: SqlDialect;
  /**
   * Strict (creating a job): a column the controls name must exist. Lenient
   * (running): a named column the table no longer has is ignored, so a
   * dropped column does not stop the stream (a WHERE column still must exist).
   */
  strict?: boolean;
}

/** Parse a WHERE condition; ControlError when it does not parse. */
export function parseWhere(where: string, dialect: SqlDialect): AstNode {
  try {
    return parseWhereClause(where, dialect);
  } catch (err) {
    if (err instanceof QueryRefusedError) {
      // Positions count from the start of the condition, not of the SELECT it was parsed in.
      const message = err.message.replace(/^sqlQuery/, 'the condition')
        .replace(/ is not a SELECT this service can parse/, ' does not parse')
        .replace(/at line 1, column (\d+)/, (_m, c: string) => `at column ${Math.max(1, Number(c) - WHERE_PREFIX.length)}`);
      throw new ControlError(ControlProblem.Where, `where: ${message}`, 'where');
    }
    throw err;
  }
}

function whereColumns(n: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(n)) { for (const x of n) whereColumns(x, out); return out; }
  if (!n || typeof n !== 'object') return out;
  const node = n as AstNode;
  if (node.type === 'column_ref') out.add(columnName(node));
  for (const v of Object.values(node)) whereColumns(v, out);
  return out;
}

function textColumn(name: string, length: number, fixed: boolean, like: ColumnType): ColumnType {
  const pg = like.pgOid !== undefined;
  return {
    name, kind: 'text', nullable: true, length, fixed, family: fixed ? 'char' : 'varchar',
    sourceType: pg ? `${fixed ? 'character' : 'character varying'}(${length})` : `${fixed ? 'char' : 'varchar'}(${length})`,
    ...(pg ? { pgOid: fixed ? 1042 : 1043 } : {}),
  };
}

/** The compiled controls of one table (for one shape of its columns). */
export class TableControl {
  private readonly exclude: Set<string>;
  private readonly mask: Set<string>;
  private readonly hash: Set<string>;
  private readonly predicate: RowPredicate | undefined;
  private readonly whereCols: string[];
  /** Source kinds of the hashed columns: how their values are read before hashing. */
  private readonly kinds: Map<string, ColumnKind>;
  /** Every column the controls name, present in this shape or not (a DDL event carries the shape after it). */
  private readonly named: Set<string>;

  private constructor(
    spec: { columns?: ColumnControls; where?: string },
    table: { schema: string; table: string; columns: ColumnType[]; key: string[] },
    private readonly opts: ControlOptions,
  ) {
    const label = `${table.schema}.${table.table}`;
    const names = new Set(table.columns.map((c) => c.name));
    const pick = (list: string[] | undefined, what: string): Set<string> => {
      const out = new Set<string>();
      for (const c of list ?? []) {
        if (names.has(c)) out.add(c);
        else if (opts.strict) throw new ControlError(ControlProblem.UnknownColumn, `columns.${what}: table ${label} has no column "${c}" (columns: ${[...names].join(', ')})`, 'columns');
      }
      return out;
    };
    this.exclude = pick(spec.columns?.exclude, 'exclude');
    this.mask = pick(spec.columns?.mask, 'mask');
    this.hash = pick(spec.columns?.hash, 'hash');
    this.named = new Set([...(spec.columns?.exclude ?? []), ...(spec.columns?.mask ?? []), ...(spec.columns?.hash ?? [])]);
    this.kinds = new Map(table.columns.filter((c) => this.hash.has(c.name)).map((c) => [c.name, c.kind]));
    for (const [a, b, an, bn] of [[this.exclude, this.mask, 'exclude', 'mask'], [this.exclude, this.hash, 'exclude', 'hash'], [this.mask, this.hash, 'mask', 'hash']] as const) {
      const both = [...a].find((c) => b.has(c));
      if (both) throw new ControlError(ControlProblem.Conflict, `columns: "${both}" of ${label} is in both ${an} and ${bn}`, 'columns');
    }
    // The key identifies rows downstream: it may be hashed (one value, one hash) but not dropped or masked.
    for (const k of table.key) {
      if (this.exclude.has(k) || this.mask.has(k)) {
        throw new ControlError(ControlProblem.KeyColumn, `columns: "${k}" is part of the key of ${label}; a key column can be hashed but not excluded or masked`, 'columns');
      }
    }
    if (this.hash.size && !opts.salt) throw new ControlError(ControlProblem.NoSalt, `columns.hash on ${label}: the job has no hashing salt`, 'columns');
    if (this.exclude.size === names.size && names.size > 0) throw new ControlError(ControlProblem.Conflict, `columns.exclude: every column of ${label} is excluded`, 'columns');
    this.whereCols = [];
    if (spec.where) {
      const ast = parseWhere(spec.where, opts.dialect);
      this.whereCols = [...whereColumns(ast, new Set())];
      const byName = new Map(table.columns.map((c) => [c.name, c]));
      for (const c of this.whereCols) {
        if (!byName.has(c)) throw new ControlError(ControlProblem.UnknownColumn, `where: table ${label} has no column "${c}" (columns: ${[...names].join(', ')})`, 'where');
      }
      try {
        this.predicate = compileWhere(ast, byName, new Map());
      } catch (err) {
        if (err instanceof UnsupportedWhere) throw new ControlError(ControlProblem.Where, `where on ${label}: ${err.message} cannot be judged row by row; use =, <>, <, <=, >, >=, IN, BETWEEN, IS [NOT] NULL, AND, OR, NOT on numbers, dates, booleans (text: = <> IN only)`, 'where');
        throw err;
      }
    }
  }

  static compile(spec: { columns?: ColumnControls; where?: string }, table: { schema: string; table: string; columns: ColumnType[]; key: string[] }, opts: ControlOptions): TableControl {
    return new TableControl(spec, table, opts);
  }

  /** The columns as the destination and the feed see them. */
  shapeColumns(columns: ColumnType[]): ColumnType[] {
    return columns.filter((c) => !this.exclude.has(c.name)).map((c) => {
      if (this.hash.has(c.name)) return textColumn(c.name, HASH_CHARS, true, c);
      if (this.mask.has(c.name)) return textColumn(c.name, MASK_TEXT.length, false, c);
      return c;
    });
  }

  shapeTable(t: TableInfo): TableInfo {
    return { ...t, columns: this.shapeColumns(t.columns) };
  }

  /** One image with the column controls applied (columns it does not carry stay absent). */
  row(r: Row): Row {
    const out: Row = {};
    for (const [k, v] of Object.entries(r)) {
      if (this.exclude.has(k)) continue;
      if (this.hash.has(k)) out[k] = hashValue(this.opts.salt!, v, this.kinds.get(k));
      else if (this.mask.has(k)) out[k] = v === null ? null : MASK_TEXT;
      else out[k] = v;
    }
    return out;
  }

  /** Whether a source image passes the row filter; undefined when it cannot be judged (a WHERE column absent). */
  passes(r: Row): boolean | undefined {
    if (!this.predicate) return true;
    if (this.whereCols.some((c) => !(c in r))) return undefined;
    return this.predicate(r) === true;
  }

  /**
   * Controls name columns, so a controlled column renamed at the source
   * would reach the destination and the feed in the clear under its new
   * name: the stream stops there instead (fatal, quoting the statement).
   * Unsupported DDL is left to the applier, which refuses it itself.
   */
  private refuseControlledRename(e: ChangeEvent): void {
    if (!e.ddl || this.named.size === 0) return;
    let action: ReturnType<typeof classifyDdl>;
    try { action = classifyDdl(e.ddl, { fromPgCapture: e.source === 'postgres' }); } catch { return; }
    if (action.kind !== 'columns') return;
    const hit = action.renames.find(([from]) => this.named.has(from));
    if (hit) {
      throw new ControlError(ControlProblem.Renamed,
        `column "${hit[0]}" of ${e.schema}.${e.table} is excluded, masked or hashed and was renamed to "${hit[1]}" at the source (${e.ddl}); `
        + 'its values would flow unprotected under the new name: create the job again with controls naming the new column', 'columns');
    }
  }

  /** A source change as the destination and the feed see it; undefined when the filter drops it. */
  change(e: ChangeEvent): ChangeEvent | undefined {
    if (e.op === Operation.Ddl) {
      this.refuseControlledRename(e);
      return { ...e, columns: this.shapeColumns(e.columns) };
    }
    const afterIn = e.after ? this.passes(e.after) : undefined;
    const beforeIn = e.before && !e.beforeKeyOnly ? this.passes(e.before) : undefined;
    let op = e.op;
    let before = e.before;
    if (e.op === Operation.Insert) {
      if (afterIn === false) return undefined;
    } else if (e.op === Operation.Delete) {
      if (beforeIn === false) return undefined;
    } else if (e.op === Operation.Update) {
      if (afterIn !== false) {
        if (beforeIn === false) { op = Operation.Insert; before = null; }
      } else {
        if (beforeIn === false) return undefined;
        op = Operation.Delete;
        // No old image (PostgreSQL, default replica identity): delete by the key the new image carries.
        if (!before && e.after) before = Object.fromEntries(e.key.map((k) => [k, e.after![k] ?? null]));
      }
    }
    return {
      ...e, op, columns: this.shapeColumns(e.columns),
      before: before ? this.row(before) : null,
      after: op === Operation.Delete || !e.after ? null : this.row(e.after),
      beforeKeyOnly: op === Operation.Delete && !e.before ? true : e.beforeKeyOnly,
    };
  }
}

/**
 * Every table's controls of a job, compiled on first use per table and
 * column shape (a schema change compiles again).
 */
export class JobControls {
  private readonly cache = new Map<string, TableControl | null>();

  constructor(private readonly filter: TableFilter | undefined, private readonly opts: ControlOptions) {}

  forTable(t: { schema: string; table: string; columns: ColumnType[]; key: string[] }): TableControl | undefined {
    const spec = controlsFor(this.filter, t.schema, t.table);
    if (!spec) return undefined;
    const k = `${t.schema}\u0000${t.table}\u0000${t.key.join(',')}\u0000${t.columns.map((c) => `${c.name}:${c.kind}`).join(',')}`;
    let c = this.cache.get(k);
    if (c === undefined) {
      c = TableControl.compile(spec, t, this.opts);
      if (this.cache.size > 1000) this.cache.clear();
      this.cache.set(k, c);
    }
    return c ?? undefined;
  }

  /** A change through its table's controls (unchanged when the table has none). */
  change(e: ChangeEvent): ChangeEvent | undefined {
    const c = this.forTable(e);
    return c ? c.change(e) : e;
  }

  /** A captured transaction with its changes through the controls (dropped ones left out; sequences keep their order). */
  transaction(tx: CapturedTransaction): CapturedTransaction {
    const events: ChangeEvent[] = [];
    for (const e of tx.events) {
      const c = this.change(e);
      if (c) events.push(c);
    }
    return events.length === tx.events.length && events.every((e, i) => e === tx.events[i]) ? tx : { ...tx, events };
  }
}
