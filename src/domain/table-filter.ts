/** Which tables a job covers and how they are renamed at the destination. Imports nothing of the project. */

/**
 * Column controls of a table (issue 15): excluded columns are not copied at
 * all, masked ones carry a fixed text, hashed ones the HMAC-SHA256 of their
 * value with the job's salt (hex).
 */
export interface ColumnControls {
  exclude?: string[];
  mask?: string[];
  hash?: string[];
}

/** One selection of a job: a schema, some or all of its tables, and the controls that apply to each of them. */
export interface TableSelection {
  schema: string;
  tables?: string[];
  columns?: ColumnControls;
  /** Row filter: a SQL condition (the subset the cached queries judge incrementally). */
  where?: string;
}

/** Which tables a job covers. Empty `schemas` = everything the user can see (system schemas excluded). */
export interface TableFilter {
  schemas: TableSelection[];
  /** Udup ReplicateIgnoreDb: schemas or schema.tables left out even when `schemas` covers them. */
  ignore?: { schema: string; tables?: string[] }[];
}

/** Whether a selection carries column or row controls. */
export function hasControls(s: TableSelection): boolean {
  const c = s.columns;
  return !!s.where || !!(c && ((c.exclude?.length ?? 0) + (c.mask?.length ?? 0) + (c.hash?.length ?? 0)) > 0);
}

/** The controls of one table: those of the first selection naming it (explicitly, else by schema). */
export function controlsFor(filter: TableFilter | undefined, schema: string, table: string): { columns?: ColumnControls; where?: string } | undefined {
  if (!filter) return undefined;
  const named = filter.schemas.find((s) => s.schema === schema && s.tables?.includes(table) && hasControls(s));
  const whole = named ?? filter.schemas.find((s) => s.schema === schema && (!s.tables || s.tables.length === 0) && hasControls(s));
  return whole ? { columns: whole.columns, where: whole.where } : undefined;
}

/** Rename mapping applied at the destination. */
export interface RenameMap {
  schemas?: Record<string, string>;
  /** key "schema.table" -> "schema.table" or "table" */
  tables?: Record<string, string>;
}

function ignored(filter: TableFilter, schema: string, table: string): boolean {
  return (filter.ignore ?? []).some((s) => s.schema === schema && (!s.tables || s.tables.length === 0 || s.tables.includes(table)));
}

export function matchesFilter(filter: TableFilter | undefined, schema: string, table: string): boolean {
  if (filter && ignored(filter, schema, table)) return false;
  if (!filter || filter.schemas.length === 0) return true;
  return filter.schemas.some((s) => s.schema === schema && (!s.tables || s.tables.length === 0 || s.tables.includes(table)));
}

/** A choice of tables as snapshotTables/addTables take it: a schema and its tables (none = the whole schema). */
export interface TableChoice { schema: string; tables?: string[] | null }

/** The selections `after` captures that `before` did not (a whole schema newly listed, or tables added to a list). */
export function addedTables(before: TableFilter, after: TableFilter): TableChoice[] {
  if (before.schemas.length === 0) return [];
  const out: TableChoice[] = [];
  for (const s of after.schemas) {
    const had = before.schemas.find((b) => b.schema === s.schema);
    if (!had) { out.push({ schema: s.schema, tables: s.tables?.length ? [...s.tables] : null }); continue; }
    if (!had.tables?.length) continue;
    if (!s.tables?.length) { out.push({ schema: s.schema, tables: null }); continue; }
    const names = s.tables.filter((t) => !had.tables!.includes(t));
    if (names.length) out.push({ schema: s.schema, tables: names });
  }
  return out;
}
