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
