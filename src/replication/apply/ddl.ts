/**
 * Which DDL the appliers replicate. The statement is only classified here;
 * the new table shape always comes from the event's `columns` (after the DDL),
 * so no foreign SQL dialect is ever translated. Column and table renames,
 * type changes, ADD and DROP COLUMN are followed; everything else that could
 * make the destination diverge silently (DROP TABLE, key changes, moving a
 * table to another schema...) stops the job with UnsupportedDdlError quoting
 * the statement.
 */
import type { ChangeEvent } from '../change-event.ts';
import { UnsupportedDdlError } from '../errors.ts';
import { splitClauses } from '../sql-text.ts';

export interface DdlTableRef { schema: string; table: string }

export type DdlAction =
  | { kind: 'create' }
  /**
   * ADD, DROP, RENAME and type changes of columns: `drops` names the dropped
   * columns, `renames` [from, to] pairs in order, `retypes` the columns (by
   * their new name) whose type changed: the destination column takes the type
   * the event's `columns` now map to.
   */
  | { kind: 'columns'; drops: string[]; renames: [string, string][]; retypes: string[] }
  | { kind: 'truncate' }
  /**
   * RENAME TABLE / ALTER TABLE ... RENAME TO, within one schema: the
   * destination table of `from` becomes that of `to`. A statement renaming
   * several tables names the pair of the event's table.
   */
  | { kind: 'rename-table'; from: DdlTableRef; to: DdlTableRef }
  /** PostgreSQL `ALTER TYPE ... ADD VALUE`: the enum columns of the event's `columns` carry the labels now. */
  | { kind: 'labels' }
  /** Indexes: they change no row, and the destination keeps only the key. */
  | { kind: 'ignore' };

const NAME = '(?:`(?:[^`]|``)+`|"(?:[^"]|"")+"|[\\w$]+)';
const QNAME = `${NAME}(?:\\s*\\.\\s*${NAME})?`;
/** A table name with its parts captured: (schema or table)(table). */
const QNAME_PARTS = `(${NAME})(?:\\s*\\.\\s*(${NAME}))?`;

function tableRef(a: string, b: string | undefined, defaultSchema: string): DdlTableRef {
  return b === undefined ? { schema: defaultSchema, table: unquote(a) } : { schema: unquote(a), table: unquote(b) };
}

const sameTable = (a: DdlTableRef, b: DdlTableRef): boolean => a.schema === b.schema && a.table === b.table;

function unquote(n: string): string {
  if (n.startsWith('`')) return n.slice(1, -1).replace(/``/g, '`');
  if (n.startsWith('"')) return n.slice(1, -1).replace(/""/g, '"');
  return n;
}

/** Comments out, whitespace collapsed, trailing semicolon dropped. */
export function normaliseDdl(statement: string): string {
  return statement
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/--[^\n]*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/;$/, '')
    .trim();
}


const ADD_NON_COLUMN = /^ADD\s+(CONSTRAINT|PRIMARY|UNIQUE|FOREIGN|CHECK|PARTITION|PERIOD|SYSTEM)\b/i;
const ADD_INDEX = /^ADD\s+(INDEX|KEY|FULLTEXT|SPATIAL)\b/i;
const DROP_INDEX = /^DROP\s+(INDEX|KEY)\b/i;
const DROP_NON_COLUMN = /^DROP\s+(CONSTRAINT|PRIMARY|FOREIGN|CHECK|PARTITION|PERIOD|SYSTEM|DEFAULT)\b/i;
const RENAME_COLUMN = new RegExp(`^RENAME\\s+COLUMN\\s+(?:IF\\s+EXISTS\\s+)?(${NAME})\\s+TO\\s+(${NAME})$`, 'i');
/** PostgreSQL `ALTER COLUMN c [SET DATA] TYPE t [USING ...]`. */
const ALTER_TYPE = new RegExp(`^ALTER\\s+(?:COLUMN\\s+)?(${NAME})\\s+(?:SET\\s+DATA\\s+)?TYPE\\s+.+$`, 'i');
/** Defaults and nullability: no row changes, and the destination keeps neither (only the key is NOT NULL there). */
const ALTER_NO_ROWS = new RegExp(`^ALTER\\s+(?:COLUMN\\s+)?${NAME}\\s+(?:SET\\s+DEFAULT\\b.*|DROP\\s+DEFAULT|SET\\s+NOT\\s+NULL|DROP\\s+NOT\\s+NULL)$`, 'i');
/** MariaDB `MODIFY [COLUMN] [IF EXISTS] c type ...`. */
const MODIFY_COLUMN = new RegExp(`^MODIFY\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?(${NAME})\\s+\\S`, 'i');
/** MariaDB `CHANGE [COLUMN] [IF EXISTS] old new type ...`. */
const CHANGE_COLUMN = new RegExp(`^CHANGE\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?(${NAME})\\s+(${NAME})\\s+\\S`, 'i');
const DROP_COLUMN = new RegExp(`^DROP\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?(${NAME})(?:\\s+(?:CASCADE|RESTRICT))?$`, 'i');

/**
 * An added column whose existing rows get a value (DEFAULT other than NULL,
 * NOT NULL's implicit default, generated, AUTO_INCREMENT): MariaDB writes no
 * row events for that, so only the rows changed later would carry it.
 */
const ADD_FILLS_ROWS = /\bDEFAULT\s+(?!NULL\b)|\bNOT\s+NULL\b|\bAS\s*\(|\bGENERATED\b|\bAUTO_INCREMENT\b/i;

/**
 * Type changes (PostgreSQL `ALTER COLUMN ... TYPE`, MariaDB `MODIFY` and a
 * `CHANGE` that keeps the name) retype the destination column to what the new
 * type maps to; the destination converts the values it holds.
 *
 * RENAME COLUMN and `CHANGE a b <type>` rename the destination column (then
 * retype it, for CHANGE). The MariaDB capture passes them on only when its
 * row events carry their own column names (binlog_row_metadata=FULL).
 *
 * `fromPgCapture`: ALTER TYPE ... ADD VALUE is replicated only where the
 * capture itself wrote the statement from the source's catalog.
 *
 * `at`: the event's table, for unqualified names and to pick its pair out of
 * a RENAME TABLE naming several.
 */
export function classifyDdl(statement: string, opts: { fromPgCapture?: boolean; at?: DdlTableRef } = {}): DdlAction {
  const s = normaliseDdl(statement);
  if (/^CREATE\s+TABLE\b/i.test(s)) return { kind: 'create' };
  const renamed = tableRenameIn(statement, s, opts.at);
  if (renamed) return renamed;
  if (/^(CREATE\s+(UNIQUE\s+)?INDEX|DROP\s+INDEX)\b/i.test(s)) return { kind: 'ignore' };
  if (opts.fromPgCapture && /^ALTER\s+TYPE\s+.+\s+ADD\s+VALUE\b/i.test(s)) return { kind: 'labels' };
  if (new RegExp(`^TRUNCATE\\s+(?:TABLE\\s+)?(?:ONLY\\s+)?${QNAME}$`, 'i').test(s)) return { kind: 'truncate' };
  const alter = new RegExp(`^ALTER\\s+(?:ONLINE\\s+|IGNORE\\s+)?TABLE\\s+(?:IF\\s+EXISTS\\s+)?(?:ONLY\\s+)?${QNAME}\\s+(.+)$`, 'i').exec(s);
  if (!alter) throw new UnsupportedDdlError(statement);
  const drops: string[] = [];
  const renames: [string, string][] = [];
  const retypes: string[] = [];
  let columnChange = false;
  for (const clause of splitClauses(alter[1]!)) {
      // A MariaDB capture passes a rename on only where row events carry the column names they were written with
    // (binlog_row_metadata=FULL); without them it fails the job itself (mysql-transaction.mapper.ts).
    const rename = RENAME_COLUMN.exec(clause);
    if (rename) { renames.push([unquote(rename[1]!), unquote(rename[2]!)]); columnChange = true; continue; }
    if (ALTER_NO_ROWS.test(clause)) continue;
    const retype = ALTER_TYPE.exec(clause) ?? MODIFY_COLUMN.exec(clause);
    if (retype) {
      // A MODIFY that adds a generated expression or fills rows is not a type change we can follow.
      if (/^MODIFY/i.test(clause) && /\bAS\s*\(|\bGENERATED\b/i.test(clause)) throw new UnsupportedDdlError(statement);
      retypes.push(unquote(retype[1]!)); columnChange = true; continue;
    }
    const change = CHANGE_COLUMN.exec(clause);
    if (change) {
      if (/\bAS\s*\(|\bGENERATED\b/i.test(clause)) throw new UnsupportedDdlError(statement);
      const [from, to] = [unquote(change[1]!), unquote(change[2]!)];
      // CHANGE to another name: a rename, then the column takes the type given (the same one, usually).
      if (from !== to) renames.push([from, to]);
      retypes.push(to); columnChange = true; continue;
    }
    if (ADD_INDEX.test(clause) || DROP_INDEX.test(clause)) continue;
    if (/^ADD\b/i.test(clause) && !ADD_NON_COLUMN.test(clause)) {
      // The source fills existing rows without logging them: the destination would keep NULLs.
      if (ADD_FILLS_ROWS.test(clause)) throw new UnsupportedDdlError(statement);
      columnChange = true;
      continue;
    }
    const drop = DROP_NON_COLUMN.test(clause) ? null : DROP_COLUMN.exec(clause);
    if (drop) { drops.push(unquote(drop[1]!)); columnChange = true; continue; }
    throw new UnsupportedDdlError(statement);
  }
  return columnChange ? { kind: 'columns', drops, renames, retypes } : { kind: 'ignore' };
}

/**
 * A table rename in `statement` (normalised `s`): `RENAME TABLE a TO b[, ...]`
 * (MariaDB; the pair whose old name is `at`) or `ALTER TABLE a RENAME [TO|AS] b`
 * (both engines; the PostgreSQL capture writes `ALTER TABLE "s"."a" RENAME TO "b"`).
 * Unqualified names are in `at`'s schema. Moving a table to another schema,
 * or a rename mixed with other changes, is unsupported.
 */
function tableRenameIn(statement: string, s: string, at?: DdlTableRef): DdlAction | undefined {
  const schema = at?.schema ?? '';
  const multi = /^RENAME\s+TABLES?\s+(.+)$/i.exec(s);
  if (multi) {
    const pair = new RegExp(`^${QNAME_PARTS}\\s+TO\\s+${QNAME_PARTS}$`, 'i');
    const pairs = splitClauses(multi[1]!).map((p) => pair.exec(p));
    if (pairs.some((p) => !p)) throw new UnsupportedDdlError(statement);
    const all = pairs.map((p) => ({ from: tableRef(p![1]!, p![2], schema), to: tableRef(p![3]!, p![4], schema) }));
    const mine = at ? all.find((p) => sameTable(p.from, at)) : all[0];
    if (!mine || mine.from.schema !== mine.to.schema) throw new UnsupportedDdlError(statement);
    return { kind: 'rename-table', from: mine.from, to: mine.to };
  }
  const alter = new RegExp(`^ALTER\\s+(?:ONLINE\\s+|IGNORE\\s+)?TABLE\\s+(?:IF\\s+EXISTS\\s+)?(?:ONLY\\s+)?${QNAME_PARTS}\\s+(.+)$`, 'i').exec(s);
  if (!alter) return undefined;
  const clauses = splitClauses(alter[3]!);
  const rename = new RegExp(`^RENAME\\s+(?:TO\\s+|AS\\s+)?(?!(?:COLUMN|INDEX|KEY|CONSTRAINT)\\s)${QNAME_PARTS}$`, 'i');
  const hits = clauses.map((c) => rename.exec(c));
  if (!hits.some(Boolean)) return undefined;
  if (clauses.length > 1) throw new UnsupportedDdlError(statement);
  const from = tableRef(alter[1]!, alter[2], schema);
  const to = tableRef(hits[0]![1]!, hits[0]![2], from.schema);
  if (from.schema !== to.schema) throw new UnsupportedDdlError(statement);
  return { kind: 'rename-table', from, to };
}

/** The table rename a DDL event carries, if any (never throws). */
export function tableRenameOf(e: Pick<ChangeEvent, 'op' | 'ddl' | 'schema' | 'table'>): { from: DdlTableRef; to: DdlTableRef } | undefined {
  if (e.op !== 'ddl' || !e.ddl || !/\bRENAME\b/i.test(e.ddl)) return undefined;
  try {
    const a = tableRenameIn(e.ddl, normaliseDdl(e.ddl), { schema: e.schema, table: e.table });
    return a?.kind === 'rename-table' ? { from: a.from, to: a.to } : undefined;
  } catch {
    return undefined;
  }
}
