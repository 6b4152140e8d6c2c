/**
 * Column and row controls of a job's table selections (issue 15), checked
 * before the job exists: names are well formed, the WHERE parses and can be
 * judged row by row, and (with the source reachable) every column named
 * exists in every table the selection covers and no key column is dropped or
 * masked. A wrong control answers BAD_USER_INPUT with `field` and `problem`,
 * never a job that fails later.
 */
import type { DbConnectionConfig } from '../replication/connection-config.ts';
import { createSnapshotReader } from '../replication/factory.ts';
import { silentLogger } from '../replication/logger.ts';
import { ControlError, ControlProblem, TableControl, parseWhere } from '../replication/transform/table-controls.ts';
import { compileRowFilter, InvalidRowFilterError } from '../replication/pipeline/row-filter.ts';
import { hasControls, type ColumnControls, type TableSelection } from '../domain/table-filter.ts';
import { AppError, ErrorCode } from '../errors.ts';

/** A table selection as GraphQL and the REST dialects hand it over. */
export interface TableSelectionData {
  schema: string;
  tables?: string[] | null;
  columns?: { exclude?: string[] | null; mask?: string[] | null; hash?: string[] | null } | null;
  where?: string | null;
}

const COLUMN_RE = /^[^\u0000]{1,64}$/;

function controlError(message: string, field: string, problem: string, extra: Record<string, unknown> = {}): AppError {
  return new AppError(ErrorCode.BadUserInput, message, { field, problem, ...extra });
}

function columnList(list: string[] | null | undefined, what: string): string[] | undefined {
  if (!list?.length) return undefined;
  for (const c of list) if (typeof c !== 'string' || !COLUMN_RE.test(c)) throw controlError(`columns.${what}: "${String(c)}" is not a column name`, 'tables.columns', ControlProblem.UnknownColumn);
  return [...new Set(list)];
}

/** One selection as stored in the spec; the syntax of `where` is checked here (offline). */
export function toSelection(t: TableSelectionData, dialect: 'mysql' | 'postgres' | undefined): TableSelection {
  const columns: ColumnControls = {};
  const exclude = columnList(t.columns?.exclude, 'exclude');
  const mask = columnList(t.columns?.mask, 'mask');
  const hash = columnList(t.columns?.hash, 'hash');
  if (exclude) columns.exclude = exclude;
  if (mask) columns.mask = mask;
  if (hash) columns.hash = hash;
  const where = t.where?.trim() || undefined;
  if (where && dialect) {
    try { parseWhere(where, dialect); } catch (err) {
      if (err instanceof ControlError) throw controlError(err.message, 'tables.where', err.problem, { schema: t.schema });
      throw err;
    }
  }
  const sel: TableSelection = { schema: t.schema, tables: t.tables?.filter(Boolean) ?? undefined };
  if (Object.keys(columns).length) sel.columns = columns;
  if (where) sel.where = where;
  return sel;
}

/**
 * Each selection's controls against the source's tables: every table it
 * covers must exist and have the columns named (a whole-schema selection
 * with controls: every table of the schema).
 */
export async function checkControlsAtSource(selections: TableSelection[], source: DbConnectionConfig): Promise<void> {
  const controlled = selections.filter(hasControls);
  if (!controlled.length) return;
  const reader = createSnapshotReader(source, silentLogger);
  try {
    for (const sel of controlled) {
      const found = await reader.listTables({ schemas: [{ schema: sel.schema, tables: sel.tables }] });
      const missing = (sel.tables ?? []).filter((t) => !found.some((f) => f.table === t));
      if (missing.length) throw controlError(`tables: ${sel.schema}.${missing[0]} does not exist at the source (controls need the tables they name)`, 'tables', 'UNKNOWN_TABLE', { schema: sel.schema, table: missing[0] });
      if (!found.length) throw controlError(`tables: schema ${sel.schema} has no table at the source to apply controls to`, 'tables', 'UNKNOWN_TABLE', { schema: sel.schema });
      for (const t of found) {
        try {
          TableControl.compile(sel, t, { salt: 'check', dialect: source.kind === 'postgres' ? 'postgres' : 'mysql', strict: true });
        } catch (err) {
          if (err instanceof ControlError) throw controlError(err.message, `tables.${err.field}`, err.problem, { schema: t.schema, table: t.table });
          throw err;
        }
      }
    }
  } finally {
    await reader.close().catch(() => undefined);
  }
}

/** A selection's controls as one comparable text (updateJob may not change them); independent of key order (jsonb reorders keys). */
export function controlsText(selections: TableSelection[]): string {
  return JSON.stringify(selections.filter(hasControls).map((s) => [
    s.schema, s.tables ?? [], s.columns?.exclude ?? [], s.columns?.mask ?? [], s.columns?.hash ?? [], s.where ?? '',
  ]));
}

/**
 * The `where` of `snapshotTables` against the source's tables it would copy,
 * before the request is queued: every such table has a key (a keyless copy is
 * a whole table: its rows cannot be replaced in part) and the filter can be
 * judged on its columns. Without a `where`, nothing to check.
 */
export async function checkSnapshotWhere(where: string | undefined, choices: { schema: string; tables?: string[] | null }[], captured: (schema: string, table: string) => boolean, source: DbConnectionConfig): Promise<void> {
  if (!where?.trim()) return;
  const reader = createSnapshotReader(source, silentLogger);
  try {
    const tables = (await reader.listTables({ schemas: choices.map((c) => ({ schema: c.schema, tables: c.tables?.length ? c.tables : undefined })) }))
      .filter((t) => captured(t.schema, t.table));
    if (!tables.length) throw controlError('snapshotTables: no captured table at the source matches tables', 'tables', 'UNKNOWN_TABLE');
    const keyless = tables.filter((t) => t.key.length === 0);
    if (keyless.length) {
      throw controlError(`where needs tables with a primary or unique NOT NULL key; keyless: ${keyless.map((t) => `${t.schema}.${t.table}`).join(', ')} (copy them without where)`, 'where', 'KEYLESS_TABLE', { schema: keyless[0]!.schema, table: keyless[0]!.table });
    }
    for (const t of tables) {
      try { compileRowFilter(where, t, source.kind === 'postgres' ? 'postgres' : 'mysql'); } catch (err) {
        if (err instanceof InvalidRowFilterError) throw controlError(`${err.message} (table ${t.schema}.${t.table})`, 'where', ControlProblem.Where, { schema: t.schema, table: t.table });
        throw err;
      }
    }
  } finally {
    await reader.close().catch(() => undefined);
  }
}
