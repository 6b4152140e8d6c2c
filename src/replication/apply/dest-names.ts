/**
 * Source (schema, table) -> destination (schema, table). A MariaDB source's
 * "schema" is its database; on a PostgreSQL destination it becomes a schema
 * of the same name, and a PostgreSQL source schema becomes a MariaDB database
 * of the same name (`public` -> database `public`). RenameMap changes either:
 * `tables["s.t"]` wins ("s2.t2", or "t2" keeping the mapped schema), then
 * `schemas["s"]`.
 */
import type { RenameMap } from '../connection-config.ts';
import type { TableRef } from './batch-plan.ts';

export function destTable(ref: TableRef, rename?: RenameMap): TableRef {
  const schema = rename?.schemas?.[ref.schema] ?? ref.schema;
  const mapped = rename?.tables?.[`${ref.schema}.${ref.table}`];
  if (!mapped) return { schema, table: ref.table };
  const dot = mapped.indexOf('.');
  return dot < 0 ? { schema, table: mapped } : { schema: mapped.slice(0, dot), table: mapped.slice(dot + 1) };
}
