/**
 * A deliberately small reader of binlog QUERY statements: which statements are
 * table DDL and which tables they touch. The capture only has to label a DDL
 * event with its table and pass the statement on faithfully; the applier
 * decides what to do with it, so a regex-level parse is enough here.
 */
import { splitClauses } from '../sql-text.ts';

export enum DdlKind {
  CreateTable = 'create_table',
  AlterTable = 'alter_table',
  DropTable = 'drop_table',
  RenameTable = 'rename_table',
  TruncateTable = 'truncate_table',
  CreateIndex = 'create_index',
  DropIndex = 'drop_index',
}

export interface TableRef { schema: string; table: string }

export interface ParsedDdl {
  kind: DdlKind;
  /** Tables the statement acts on, in statement order. */
  tables: TableRef[];
  /** RENAME TABLE (and ALTER TABLE ... RENAME TO): the new names, parallel to `tables`. */
  renamedTo?: TableRef[];
}

/** Statements that are transaction control, never DDL. */
export function isTransactionControl(sql: string): boolean {
  return /^(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION|SAVEPOINT|RELEASE\s+SAVEPOINT|ROLLBACK\s+TO|XA\s)/i.test(stripComments(sql));
}

/** True for statements that end a transaction group in the binlog. */
export function isCommitMarker(sql: string): boolean {
  const s = stripComments(sql).toUpperCase();
  return s === 'COMMIT' || s === 'ROLLBACK' || s.startsWith('XA COMMIT') || s.startsWith('XA ROLLBACK');
}

export function stripComments(sql: string): string {
  let s = sql.trim();
  for (;;) {
    if (s.startsWith('/*') && !s.startsWith('/*!')) {
      const end = s.indexOf('*/');
      if (end < 0) return s;
      s = s.slice(end + 2).trim();
    } else if (s.startsWith('#') || s.startsWith('-- ')) {
      const nl = s.indexOf('\n');
      if (nl < 0) return '';
      s = s.slice(nl + 1).trim();
    } else {
      return s;
    }
  }
}

const IDENT = '(?:`(?:[^`]|``)+`|[\\w$\\u0080-\\uffff]+)';
const NAME = `(${IDENT})(?:\\s*\\.\\s*(${IDENT}))?`;

function unquote(id: string): string {
  return id.startsWith('`') ? id.slice(1, -1).replace(/``/g, '`') : id;
}

function ref(a: string, b: string | undefined, defaultSchema: string): TableRef {
  return b === undefined ? { schema: defaultSchema, table: unquote(a) } : { schema: unquote(a), table: unquote(b) };
}

/** Every `name` in a comma-separated list starting at `text`. */
function nameList(text: string, defaultSchema: string): TableRef[] {
  const out: TableRef[] = [];
  const re = new RegExp(`^\\s*${NAME}\\s*(,|$|\\s)`, 'u');
  let rest = text;
  for (;;) {
    const m = re.exec(rest);
    if (!m) break;
    out.push(ref(m[1]!, m[2], defaultSchema));
    rest = rest.slice(m[0].length);
    if (m[3] !== ',') {
      const comma = /^\s*,/.exec(rest);
      if (!comma) break;
      rest = rest.slice(comma[0].length);
    }
  }
  return out;
}

/**
 * Table DDL in `sql` (executed with default schema `defaultSchema`), or
 * undefined for anything else (CREATE DATABASE, GRANT, temporary tables, ...).
 */
export function parseDdl(sql: string, defaultSchema: string): ParsedDdl | undefined {
  const s = stripComments(sql);
  let m: RegExpExecArray | null;
  const one = (kind: DdlKind, a: string, b: string | undefined): ParsedDdl => ({ kind, tables: [ref(a, b, defaultSchema)] });

  if (/^(CREATE|DROP)\s+(OR\s+REPLACE\s+)?TEMPORARY\s/i.test(s)) return undefined;
  if ((m = new RegExp(`^CREATE\\s+(?:OR\\s+REPLACE\\s+)?TABLE\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?${NAME}`, 'iu').exec(s))) {
    return one(DdlKind.CreateTable, m[1]!, m[2]);
  }
  if ((m = new RegExp(`^ALTER\\s+(?:ONLINE\\s+)?(?:IGNORE\\s+)?TABLE\\s+(?:IF\\s+EXISTS\\s+)?${NAME}`, 'iu').exec(s))) {
    const out = one(DdlKind.AlterTable, m[1]!, m[2]);
    // `ALTER TABLE a RENAME [TO|AS] b`: an unqualified new name stays in the table's database.
    const renameRe = new RegExp(`^RENAME\\s+(?:TO\\s+|AS\\s+)?(?!(?:COLUMN|INDEX|KEY)\\s)${NAME}$`, 'iu');
    for (const clause of splitClauses(s.slice(m[0].length).replace(/;\s*$/, ''))) {
      const r = renameRe.exec(clause);
      if (r) out.renamedTo = [ref(r[1]!, r[2], out.tables[0]!.schema)];
    }
    return out;
  }
  if ((m = /^DROP\s+TABLES?\s+(?:IF\s+EXISTS\s+)?([\s\S]*)$/i.exec(s))) {
    const tables = nameList(m[1]!, defaultSchema);
    return tables.length ? { kind: DdlKind.DropTable, tables } : undefined;
  }
  if ((m = /^RENAME\s+TABLES?\s+([\s\S]*)$/i.exec(s))) {
    const pairRe = new RegExp(`^\\s*${NAME}\\s+TO\\s+${NAME}\\s*(,)?`, 'iu');
    const tables: TableRef[] = [];
    const renamedTo: TableRef[] = [];
    let rest = m[1]!;
    for (let p = pairRe.exec(rest); p; p = pairRe.exec(rest)) {
      tables.push(ref(p[1]!, p[2], defaultSchema));
      renamedTo.push(ref(p[3]!, p[4], defaultSchema));
      rest = rest.slice(p[0].length);
      if (!p[5]) break;
    }
    return tables.length ? { kind: DdlKind.RenameTable, tables, renamedTo } : undefined;
  }
  if ((m = new RegExp(`^TRUNCATE\\s+(?:TABLE\\s+)?${NAME}`, 'iu').exec(s))) {
    return one(DdlKind.TruncateTable, m[1]!, m[2]);
  }
  if ((m = new RegExp(`^CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:ONLINE\\s+|OFFLINE\\s+)?(?:UNIQUE\\s+|FULLTEXT\\s+|SPATIAL\\s+)?INDEX\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?${IDENT}[\\s\\S]*?\\sON\\s+${NAME}`, 'iu').exec(s))) {
    return one(DdlKind.CreateIndex, m[1]!, m[2]);
  }
  if ((m = new RegExp(`^DROP\\s+INDEX\\s+(?:IF\\s+EXISTS\\s+)?${IDENT}\\s+ON\\s+${NAME}`, 'iu').exec(s))) {
    return one(DdlKind.DropIndex, m[1]!, m[2]);
  }
  return undefined;
}

/**
 * The column renames of an ALTER TABLE statement, [from, to] in order:
 * `RENAME COLUMN a TO b` and `CHANGE [COLUMN] a b <type>` with another name.
 */
export function columnRenames(sql: string): [string, string][] {
  const s = stripComments(sql).replace(/;\s*$/, '');
  const head = new RegExp(`^ALTER\\s+(?:ONLINE\\s+)?(?:IGNORE\\s+)?TABLE\\s+(?:IF\\s+EXISTS\\s+)?${NAME}`, 'iu').exec(s);
  if (!head) return [];
  const out: [string, string][] = [];
  const rename = new RegExp(`^RENAME\\s+COLUMN\\s+(?:IF\\s+EXISTS\\s+)?(${IDENT})\\s+TO\\s+(${IDENT})$`, 'iu');
  const change = new RegExp(`^CHANGE\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?(${IDENT})\\s+(${IDENT})\\s+\\S`, 'iu');
  for (const clause of splitClauses(s.slice(head[0].length))) {
    const m = rename.exec(clause) ?? change.exec(clause);
    if (!m) continue;
    const [from, to] = [unquote(m[1]!), unquote(m[2]!)];
    if (from !== to) out.push([from, to]);
  }
  return out;
}

/**
 * An ALTER TABLE that only renames columns, clause by clause: `RENAME COLUMN
 * a TO b` (no type) or `CHANGE [COLUMN] a b <type ...>` (`type`: the type word
 * and its parenthesised arguments, lower case). Undefined when any clause does
 * something else.
 */
export function renameOnlyClauses(sql: string): { from: string; to: string; type?: string }[] | undefined {
  const s = stripComments(sql).replace(/;\s*$/, '');
  const head = new RegExp(`^ALTER\\s+(?:ONLINE\\s+)?(?:IGNORE\\s+)?TABLE\\s+(?:IF\\s+EXISTS\\s+)?${NAME}`, 'iu').exec(s);
  if (!head) return undefined;
  const rename = new RegExp(`^RENAME\\s+COLUMN\\s+(?:IF\\s+EXISTS\\s+)?(${IDENT})\\s+TO\\s+(${IDENT})$`, 'iu');
  const change = new RegExp(`^CHANGE\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?(${IDENT})\\s+(${IDENT})\\s+(\\w+(?:\\s*\\([^)]*\\))?)`, 'iu');
  const out: { from: string; to: string; type?: string }[] = [];
  const clauses = splitClauses(s.slice(head[0].length));
  for (const clause of clauses) {
    const r = rename.exec(clause);
    if (r) { out.push({ from: unquote(r[1]!), to: unquote(r[2]!) }); continue; }
    const c = change.exec(clause);
    if (!c) return undefined;
    out.push({ from: unquote(c[1]!), to: unquote(c[2]!), type: c[3]!.replace(/\s+/g, '').toLowerCase() });
  }
  return out.length ? out : undefined;
}
