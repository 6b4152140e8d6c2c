/**
 * Validation and analysis of a cached query's SQL, with node-sql-parser in
 * the source's dialect.
 *
 * validate: exactly one statement, a SELECT, nothing that writes (SELECT
 * INTO, FOR UPDATE, variable assignment) and no function with side effects
 * or reach outside the query (sleeping, files, large objects, other
 * servers, locks, sequences, settings). The source still runs the query in
 * a READ ONLY transaction with a statement timeout: this is the first line,
 * with messages a caller can act on.
 *
 * analyze: whether the query has the one shape kept incrementally,
 *
 *   SELECT g1, .., agg(c), .. FROM one_table [WHERE p] [GROUP BY g1, ..]
 *
 * with agg in COUNT(*), COUNT(c), SUM, AVG, MIN, MAX over plain columns and
 * every selected plain column grouped. Anything else (joins, subqueries,
 * window functions, DISTINCT, HAVING, ORDER BY, LIMIT, expressions) is
 * re-run on the source, with the reason recorded.
 */
import sqlParser from 'node-sql-parser';
import { QueryRefusedError, RefusalCode } from './query-errors.ts';
import type { SchemaTables } from './prisma-schema.ts';

export type SqlDialect = 'postgres' | 'mysql';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AstNode = Record<string, any>;

export type AggregateFn = 'count' | 'sum' | 'avg' | 'min' | 'max';

export interface AggregateSpec {
  fn: AggregateFn;
  /** null for COUNT(*). */
  column: string | null;
}

export type OutputColumn =
  | { kind: 'group'; column: string; name: string }
  | { kind: 'aggregate'; index: number; name: string };

export interface IncrementalShape {
  table: { schema: string | null; name: string };
  groupBy: string[];
  aggregates: AggregateSpec[];
  outputs: OutputColumn[];
  /** The WHERE clause as parsed; compiled against column types later. */
  where: AstNode | null;
}

export interface AnalyzedQuery {
  sql: string;
  dialect: SqlDialect;
  /** Tables read, schema-qualified when written so. */
  tables: { schema: string | null; name: string }[];
  /** Set when the query has the incremental shape. */
  shape?: IncrementalShape;
  /** Why it is re-run instead (when `shape` is absent). */
  rerunReason?: string;
}

const { Parser } = sqlParser as unknown as { Parser: new () => { astify(sql: string, opt: object): AstNode | AstNode[]; tableList(sql: string, opt: object): string[]; columnList(sql: string, opt: object): string[] } };
const parser = new Parser();

// The MySQL grammar, not MariaDB's: the latter rejects common column names such as `status`.
const parserDatabase = (d: SqlDialect) => (d === 'postgres' ? 'PostgresQL' : 'MySQL');

/** Functions refused anywhere in a cached query, with the reason given to the caller. */
const SIDE_EFFECTS: Record<string, string> = {
  pg_sleep: 'sleeps on the source', pg_sleep_for: 'sleeps on the source', pg_sleep_until: 'sleeps on the source',
  sleep: 'sleeps on the source', benchmark: 'burns CPU on the source',
  lo_import: 'reads a server file into a large object', lo_export: 'writes a large object to a server file',
  lo_create: 'creates a large object', lo_creat: 'creates a large object', lo_unlink: 'deletes a large object',
  lo_from_bytea: 'creates a large object', lo_put: 'writes a large object', lo_get: 'reads a large object',
  pg_read_file: 'reads a server file', pg_read_binary_file: 'reads a server file', pg_ls_dir: 'lists a server directory',
  pg_stat_file: 'reads server file metadata', pg_file_write: 'writes a server file', load_file: 'reads a server file',
  dblink: 'queries another server', dblink_exec: 'runs a statement on another server', dblink_connect: 'connects to another server',
  dblink_send_query: 'queries another server',
  query_to_xml: 'runs a query given as text', query_to_xml_and_xmlschema: 'runs a query given as text', cursor_to_xml: 'reads a cursor',
  pg_terminate_backend: 'ends other sessions', pg_cancel_backend: 'cancels other sessions', pg_reload_conf: 'reloads the server configuration',
  pg_rotate_logfile: 'rotates the server log', pg_switch_wal: 'switches the WAL file', pg_notify: 'sends a notification',
  pg_logical_emit_message: 'writes to the WAL', pg_create_logical_replication_slot: 'creates a replication slot',
  pg_drop_replication_slot: 'drops a replication slot', set_config: 'changes a setting',
  nextval: 'advances a sequence', setval: 'sets a sequence', lastval: 'reads session sequence state',
  pg_advisory_lock: 'takes a lock', pg_advisory_xact_lock: 'takes a lock', pg_try_advisory_lock: 'takes a lock',
  pg_advisory_lock_shared: 'takes a lock', pg_try_advisory_xact_lock: 'takes a lock', pg_advisory_unlock: 'releases a lock',
  pg_advisory_unlock_all: 'releases locks', get_lock: 'takes a lock', release_lock: 'releases a lock',
  release_all_locks: 'releases locks', is_used_lock: 'inspects locks', is_free_lock: 'inspects locks',
  master_pos_wait: 'waits for replication', master_gtid_wait: 'waits for replication', source_pos_wait: 'waits for replication',
  sys_exec: 'runs a shell command', sys_eval: 'runs a shell command', last_insert_id: 'reads or sets session state',
  txid_current: 'assigns a transaction id', pg_current_xact_id: 'assigns a transaction id',
};

const DDL_TYPES = new Set(['create', 'drop', 'alter', 'truncate', 'rename', 'grant', 'revoke', 'comment']);
const OTHER_STATEMENTS = new Set(['insert', 'update', 'delete', 'replace', 'call', 'set', 'lock', 'unlock', 'use', 'exec', 'execute', 'transaction', 'load_data', 'show', 'desc', 'explain', 'copy', 'merge', 'declare', 'deallocate', 'prepare']);

function statementRefusal(type: string): QueryRefusedError {
  const t = type.toUpperCase();
  if (DDL_TYPES.has(type)) return new QueryRefusedError(RefusalCode.Ddl, `sqlQuery must be a single SELECT: ${t} is DDL and changes the schema`);
  if (['insert', 'update', 'delete', 'replace', 'merge'].includes(type)) return new QueryRefusedError(RefusalCode.NotSelect, `sqlQuery must be a single SELECT: ${t} is DML and changes data`);
  return new QueryRefusedError(RefusalCode.NotSelect, `sqlQuery must be a single SELECT, not ${t}`);
}

/** Name of a function node, lower-cased, without its schema. */
export function functionName(node: AstNode): string {
  const parts = node.name?.name as { value: string }[] | undefined;
  if (Array.isArray(parts) && parts.length) return String(parts[parts.length - 1]!.value).toLowerCase();
  return typeof node.name === 'string' ? node.name.toLowerCase() : '';
}

/** Column name of a column_ref node (the two dialects shape it differently). */
export function columnName(node: AstNode): string {
  const c = node.column;
  if (typeof c === 'string') return c;
  return String(c?.expr?.value ?? '');
}

function walk(node: unknown, visit: (n: AstNode) => void): void {
  if (Array.isArray(node)) { for (const x of node) walk(x, visit); return; }
  if (!node || typeof node !== 'object') return;
  visit(node as AstNode);
  for (const v of Object.values(node)) walk(v, visit);
}

function parse(sql: string, dialect: SqlDialect): AstNode {
  const text = sql.trim().replace(/;\s*$/, '');
  if (!text) throw new QueryRefusedError(RefusalCode.Syntax, 'sqlQuery is empty');
  let ast: AstNode | AstNode[];
  try {
    ast = parser.astify(text, { database: parserDatabase(dialect) });
  } catch (err) {
    const e = err as { message?: string; location?: { start?: { line: number; column: number } } };
    const at = e.location?.start ? ` at line ${e.location.start.line}, column ${e.location.start.column}` : '';
    // A statement the parser cannot read is refused: what cannot be checked cannot be run.
    throw new QueryRefusedError(RefusalCode.Syntax, `sqlQuery is not a SELECT this service can parse (${dialect === 'postgres' ? 'PostgreSQL' : 'MariaDB/MySQL'} dialect)${at}: ${(e.message ?? String(err)).split('\n')[0]!.slice(0, 200)}`, { cause: err });
  }
  const list = Array.isArray(ast) ? ast : [ast];
  if (list.length !== 1) throw new QueryRefusedError(RefusalCode.MultipleStatements, `sqlQuery must be one statement; found ${list.length}`);
  return list[0]!;
}

/** What a bare condition is parsed inside of (error positions are shifted back by its length). */
export const WHERE_PREFIX = 'SELECT * FROM t WHERE ';

/**
 * A bare WHERE condition (job and feed row filters), parsed as the WHERE of
 * `SELECT * FROM t WHERE <condition>` with the same refusals as a cached
 * query (no writes, no side-effect functions); returns the condition's AST.
 */
export function parseWhereClause(condition: string, dialect: SqlDialect): AstNode {
  const text = condition.trim();
  if (!text) throw new QueryRefusedError(RefusalCode.Syntax, 'sqlQuery is empty');
  if (/;/.test(text.replace(/'(?:[^']|'')*'/g, ''))) throw new QueryRefusedError(RefusalCode.MultipleStatements, 'sqlQuery must be one condition, without ";"');
  const ast = validateSelect(`${WHERE_PREFIX}${text}`, dialect);
  if (!ast.where || ast.limit?.value?.length || ast.orderby || ast.groupby) throw new QueryRefusedError(RefusalCode.Syntax, 'sqlQuery is not a single condition');
  return ast.where as AstNode;
}

/** Refuse anything but one side-effect-free SELECT; returns its AST. */
export function validateSelect(sql: string, dialect: SqlDialect): AstNode {
  const ast = parse(sql, dialect);
  const type = String(ast.type ?? '').toLowerCase();
  if (type !== 'select') throw statementRefusal(type || 'unknown');
  walk(ast, (n) => {
    const t = typeof n.type === 'string' ? n.type.toLowerCase() : '';
    if (t && t !== 'select' && (DDL_TYPES.has(t) || OTHER_STATEMENTS.has(t)) && ('table' in n || 'name' in n || 'keyword' in n)) throw statementRefusal(t);
    if (t === 'function') {
      const name = functionName(n);
      const why = SIDE_EFFECTS[name];
      if (why) throw new QueryRefusedError(RefusalCode.SideEffect, `sqlQuery calls ${name}(), which ${why}: cached queries may only read`);
    }
    if (t === 'assign') throw new QueryRefusedError(RefusalCode.Writes, 'sqlQuery assigns a variable: cached queries may only read');
    if (n.into && typeof n.into === 'object' && n.into.position) throw new QueryRefusedError(RefusalCode.Writes, 'sqlQuery uses SELECT ... INTO, which writes: remove the INTO clause');
    if (n.locking_read) throw new QueryRefusedError(RefusalCode.Writes, 'sqlQuery takes row locks (FOR UPDATE / LOCK IN SHARE MODE): remove the locking clause');
  });
  return ast;
}

function splitListEntry(entry: string): { schema: string | null; name: string } {
  const [, db, name] = entry.split('::');
  return { schema: db && db !== 'null' ? db : null, name: name ?? '' };
}

/** Check every table and column the query names against the Prisma schema. */
export function checkAgainstSchema(sql: string, dialect: SqlDialect, ast: AstNode, schema: SchemaTables): void {
  const opt = { database: parserDatabase(dialect) };
  const ctes = new Set(((ast.with ?? []) as AstNode[]).map((w) => String(w.name?.value ?? w.name ?? '').toLowerCase()));
  const tables = parser.tableList(sql.trim().replace(/;\s*$/, ''), opt).map(splitListEntry).filter((t) => !ctes.has(t.name.toLowerCase()));
  const known = [];
  for (const t of tables) {
    const found = schema.get(t.name.toLowerCase());
    if (!found) {
      const models = [...schema.values()].map((m) => m.table).join(', ');
      throw new QueryRefusedError(RefusalCode.UnknownTable, `sqlQuery reads table "${t.name}", which the Prisma schema does not declare (its tables: ${models || 'none'})`);
    }
    known.push(found);
  }
  const aliases = new Set<string>();
  walk(ast.columns, (n) => { if (typeof n.as === 'string') aliases.add(n.as.toLowerCase()); });
  for (const entry of parser.columnList(sql.trim().replace(/;\s*$/, ''), opt)) {
    const { schema: table, name } = splitListEntry(entry);
    if (!name || name === '*' || name === '(.*)') continue;
    const lower = name.toLowerCase();
    if (table) {
      const t = schema.get(table.toLowerCase());
      if (!t || ctes.has(table.toLowerCase())) continue;
      if (![...t.columns].some((c) => c.toLowerCase() === lower)) {
        throw new QueryRefusedError(RefusalCode.UnknownColumn, `sqlQuery names column "${name}", which table "${t.table}" (model ${t.model}) does not have in the Prisma schema`);
      }
    } else {
      if (aliases.has(lower)) continue;
      if (known.length && !known.some((t) => [...t.columns].some((c) => c.toLowerCase() === lower))) {
        throw new QueryRefusedError(RefusalCode.UnknownColumn, `sqlQuery names column "${name}", which no table it reads (${known.map((t) => t.table).join(', ')}) has in the Prisma schema`);
      }
    }
  }
}

const AGGREGATES = new Set<AggregateFn>(['count', 'sum', 'avg', 'min', 'max']);

function isColumnRef(n: AstNode | undefined): boolean { return !!n && n.type === 'column_ref'; }

/** Whether the query has the incremental shape; otherwise the reason it is re-run. */
export function analyze(sql: string, dialect: SqlDialect, ast: AstNode): AnalyzedQuery {
  const opt = { database: parserDatabase(dialect) };
  const tables = parser.tableList(sql.trim().replace(/;\s*$/, ''), opt).map(splitListEntry);
  const base: AnalyzedQuery = { sql, dialect, tables };
  const rerun = (reason: string): AnalyzedQuery => ({ ...base, rerunReason: reason });

  let nested = false;
  walk([ast.columns, ast.where, ast.having, ast.orderby, ast.groupby], (n) => { if (n.ast || n.type === 'select') nested = true; });
  const from = (ast.from ?? []) as AstNode[];
  if (ast.with) return rerun('it has a WITH clause');
  if (from.length !== 1 || from[0]!.join || !from[0]!.table || from[0]!.expr) return rerun(from.length > 1 ? 'it joins tables' : 'it does not read exactly one table');
  if (nested) return rerun('it has a subquery');
  if (ast.distinct?.type) return rerun('it uses SELECT DISTINCT');
  if (ast.having) return rerun('it has a HAVING clause');
  if (ast.orderby) return rerun('it has an ORDER BY clause');
  if (ast.limit && (ast.limit.value?.length ?? 0) > 0) return rerun('it has a LIMIT clause');
  if (ast.window) return rerun('it uses window functions');
  const t = from[0]!;
  const alias = t.as ? String(t.as) : null;
  const qualifierOk = (n: AstNode) => !n.table || n.table === t.table || (alias !== null && n.table === alias);

  const groupBy: string[] = [];
  for (const g of (ast.groupby?.columns ?? []) as AstNode[]) {
    if (!isColumnRef(g) || !qualifierOk(g)) return rerun('it groups by an expression');
    groupBy.push(columnName(g));
  }
  const aggregates: AggregateSpec[] = [];
  const outputs: OutputColumn[] = [];
  const cols = ast.columns;
  if (!Array.isArray(cols)) return rerun('it selects *');
  for (const c of cols as AstNode[]) {
    const e = c.expr as AstNode;
    const as = typeof c.as === 'string' ? c.as : null;
    if (isColumnRef(e)) {
      const col = columnName(e);
      if (col === '*') return rerun('it selects *');
      if (!qualifierOk(e)) return rerun(`column ${col} is qualified by another table`);
      if (!groupBy.includes(col)) return rerun(`column ${col} is selected but not grouped`);
      outputs.push({ kind: 'group', column: col, name: as ?? col });
      continue;
    }
    if (e?.type === 'aggr_func') {
      const fn = String(e.name).toLowerCase() as AggregateFn;
      if (!AGGREGATES.has(fn)) return rerun(`aggregate ${fn.toUpperCase()} is not kept incrementally`);
      if (e.over) return rerun('it uses window functions');
      if (e.args?.distinct) return rerun(`it uses ${fn.toUpperCase()}(DISTINCT ...)`);
      if (e.args?.orderby || e.args?.filter || e.filter) return rerun('an aggregate has ORDER BY or FILTER');
      const arg = e.args?.expr as AstNode | undefined;
      let column: string | null;
      if (arg?.type === 'star' && fn === 'count') column = null;
      else if (arg && isColumnRef(arg) && qualifierOk(arg) && columnName(arg) !== '*') column = columnName(arg);
      else return rerun(`${fn.toUpperCase()} takes an expression, not a plain column`);
      aggregates.push({ fn, column });
      const pgName = fn;
      outputs.push({ kind: 'aggregate', index: aggregates.length - 1, name: as ?? (dialect === 'postgres' ? pgName : `${fn}(${column ?? '*'})`) });
      continue;
    }
    if (e?.type === 'window_func' || e?.over) return rerun('it uses window functions');
    return rerun('it selects an expression that is neither a grouped column nor an aggregate');
  }
  if (aggregates.length === 0) return rerun('it has no aggregate');
  if (ast.where) {
    let unsupported: string | undefined;
    walk(ast.where, (n) => { if (isColumnRef(n) && !qualifierOk(n)) unsupported = 'WHERE names another table'; });
    if (unsupported) return rerun(unsupported);
  }
  return { ...base, shape: { table: { schema: t.db ? String(t.db) : null, name: String(t.table) }, groupBy, aggregates, outputs, where: ast.where ?? null } };
}

/** SQL text of `ast` in the dialect, with its select list replaced by `selectList` (SQL text in the same dialect). */
export function withSelectList(ast: AstNode, selectList: string, dialect: SqlDialect): string {
  const cols = parser.astify(`SELECT ${selectList}`, { database: parserDatabase(dialect) }) as AstNode;
  const copy = { ...ast, columns: cols.columns };
  return (parser as unknown as { sqlify(a: AstNode, o: object): string }).sqlify(copy, { database: parserDatabase(dialect) });
}
