/** Which tables a job covers and how they are renamed at the destination. Imports nothing of the project. */

/** Which tables a job covers. Empty `schemas` = everything the user can see (system schemas excluded). */
export interface TableFilter {
  schemas: { schema: string; tables?: string[] }[];
}

/** Rename mapping applied at the destination. */
export interface RenameMap {
  schemas?: Record<string, string>;
  /** key "schema.table" -> "schema.table" or "table" */
  tables?: Record<string, string>;
}

export function matchesFilter(filter: TableFilter | undefined, schema: string, table: string): boolean {
  if (!filter || filter.schemas.length === 0) return true;
  return filter.schemas.some((s) => s.schema === schema && (!s.tables || s.tables.length === 0 || s.tables.includes(table)));
}

/** A job's table choice as the API takes it: a schema and its tables (none = the whole schema). */
export interface TableSelection { schema: string; tables?: string[] | null }

/** The selections `after` captures that `before` did not (a whole schema newly listed, or tables added to a list). */
export function addedTables(before: TableFilter, after: TableFilter): TableSelection[] {
  if (before.schemas.length === 0) return [];
  const out: TableSelection[] = [];
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
