/**
 * Incremental upkeep of an aggregate query (see aggregate-state.ts for the
 * invariants): builds the baseline query that reads the decomposed state
 * (count, and per column count/sum/min/max) from the source, applies feed
 * changes, and recomputes only the groups whose MIN/MAX lost their extreme.
 */
import type { ChangeEvent, ColumnType, Row, Value } from '../change-event.ts';
import { Operation } from '../change-event.ts';
import { AggregateState, type ResultRows, type SerializedState } from './aggregate-state.ts';
import { withSelectList, type AstNode, type IncrementalShape, type SqlDialect } from './query-plan.ts';
import type { BaselineFilter, SourceSession, SourceTable } from './source-session.ts';
import { classOf, compileWhere, UnsupportedWhere } from './where-filter.ts';
import { quoteIdent as pgQuote } from '../capture/pg-connection.ts';
import { quoteIdent as myQuote } from '../capture/mysql-schema.ts';

const INT: ColumnType = { name: 'n', kind: 'int', sourceType: 'bigint' };
const DEC: ColumnType = { name: 's', kind: 'decimal', sourceType: 'numeric' };
const FLOAT: ColumnType = { name: 's', kind: 'float', sourceType: 'double precision' };

/** Why a query of the right shape is still re-run, or undefined when it can be kept incrementally. */
export function incrementalBlocker(shape: IncrementalShape, table: SourceTable): string | undefined {
  const cols = new Map(table.columns.map((c) => [c.name, c]));
  for (const g of shape.groupBy) {
    const c = cols.get(g);
    if (!c) return `column ${g} is not in ${table.schema}.${table.table}`;
    if (!['int', 'decimal', 'text', 'enum', 'uuid', 'date', 'bool'].includes(c.kind)) return `grouping by ${c.sourceType} is not kept incrementally`;
  }
  for (const a of shape.aggregates) {
    if (a.column === null) continue;
    const c = cols.get(a.column);
    if (!c) return `column ${a.column} is not in ${table.schema}.${table.table}`;
    const cls = classOf(c);
    if ((a.fn === 'sum' || a.fn === 'avg') && cls !== 'num') return `${a.fn.toUpperCase()}(${a.column}) is not over a number column`;
    if ((a.fn === 'min' || a.fn === 'max') && cls !== 'num' && cls !== 'date') return `${a.fn.toUpperCase()} over ${c.sourceType} depends on the collation`;
  }
  try {
    compileWhere(shape.where, cols, table.folds);
  } catch (err) {
    if (err instanceof UnsupportedWhere) return `its WHERE clause has ${err.message}`;
    throw err;
  }
  return undefined;
}

export class IncrementalEngine {
  readonly state: AggregateState;
  private readonly columns: Map<string, ColumnType>;
  private readonly stateSql: string;
  private readonly stateTypes: (ColumnType | undefined)[];
  private needsBaseline = false;

  constructor(readonly shape: IncrementalShape, readonly table: SourceTable, ast: AstNode, private readonly dialect: SqlDialect, private readonly source: SourceSession) {
    this.columns = new Map(table.columns.map((c) => [c.name, c]));
    this.state = new AggregateState(shape, this.columns, compileWhere(shape.where, this.columns, table.folds), table.folds, dialect);
    const q = dialect === 'postgres' ? pgQuote : myQuote;
    const list: string[] = []; const types: (ColumnType | undefined)[] = [];
    shape.groupBy.forEach((g, i) => { list.push(`${q(g)} AS g${i}`); types.push(this.columns.get(g)); });
    list.push('count(*) AS c'); types.push(INT);
    this.state.cellColumns.forEach((c, i) => {
      const col = this.columns.get(c)!;
      const numeric = classOf(col) === 'num';
      list.push(`count(${q(c)}) AS n${i}`); types.push(INT);
      list.push(numeric ? `sum(${q(c)}) AS s${i}` : `NULL AS s${i}`); types.push(col.kind === 'float' ? FLOAT : DEC);
      list.push(`min(${q(c)}) AS mn${i}`, `max(${q(c)}) AS mx${i}`); types.push(col, col);
    });
    this.stateSql = withSelectList(ast, list.join(', '), dialect);
    this.stateTypes = types;
  }

  private rowsToGroups(rows: Value[][]) {
    const k = this.shape.groupBy.length;
    return rows.map((r) => ({
      values: r.slice(0, k),
      count: Number(r[k] ?? 0),
      cells: this.state.cellColumns.map((_, i) => ({ n: Number(r[k + 1 + i * 4] ?? 0), sum: r[k + 2 + i * 4] ?? null, min: r[k + 3 + i * 4] ?? null, max: r[k + 4 + i * 4] ?? null })),
    }));
  }

  /** Read the whole state from the source; the filter says which feed changes it already contains. */
  async baseline(): Promise<BaselineFilter> {
    const { rows, filter } = await this.source.baseline(this.stateSql, this.stateTypes);
    this.state.load(this.rowsToGroups(rows));
    this.needsBaseline = false;
    return filter;
  }

  restore(s: SerializedState): void { this.state.restore(s); }

  private touches(ev: ChangeEvent): boolean {
    return ev.table === this.table.table && ev.schema === this.table.schema;
  }

  /** Apply one change; returns the keys of groups touched. */
  apply(ev: ChangeEvent): string[] {
    if (!this.touches(ev)) return [];
    if (ev.op === Operation.Ddl) { this.needsBaseline = true; return []; }
    const touched: string[] = [];
    const before = ev.before as Row | null;
    if (ev.op === Operation.Update || ev.op === Operation.Delete) {
      // Without the full before image (PostgreSQL without REPLICA IDENTITY FULL) the old group is unknown.
      if (!before || ev.beforeKeyOnly) { this.needsBaseline = true; return []; }
      if (this.state.matches(before)) touched.push(this.state.apply(before, -1));
    }
    if ((ev.op === Operation.Insert || ev.op === Operation.Update) && this.state.matches(ev.after)) touched.push(this.state.apply(ev.after!, 1));
    return touched;
  }

  get baselineNeeded(): boolean { return this.needsBaseline; }

  /** Recompute MIN/MAX of the groups that lost an extreme, one source query per group. */
  async refreshStale(): Promise<number> {
    const stale = this.state.staleGroups();
    const dialect = this.dialect;
    for (const g of stale) {
      const params: Value[] = [];
      const conds = g.values.map((v, i) => {
        if (v === null) return `s.g${i} IS NULL`;
        params.push(v);
        return `s.g${i} = ${dialect === 'postgres' ? `$${params.length}` : '?'}`;
      });
      const sql = `SELECT * FROM (${this.stateSql}) s${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''}`;
      const r = await this.source.run(sql, params);
      const found = this.rowsToGroups(r.rows.map((row) => row.map((v, i) => {
        const t = this.stateTypes[i];
        return t?.kind === 'int' && typeof v === 'string' && /^-?\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : v;
      })))[0];
      this.state.setExtremes(g.key, found?.cells.map((c) => ({ min: c.min, max: c.max })));
    }
    return stale.length;
  }

  result(): ResultRows { return this.state.result(); }
}
