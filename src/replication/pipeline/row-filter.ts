/**
 * The `where` of an incremental snapshot: the WHERE subset cached queries
 * judge exactly (cached-query/where-filter.ts), compiled into a row predicate
 * over the rows the snapshot reader returns. Text compares exactly (no
 * collation folding).
 */
import type { ColumnType, SourceKind } from '../change-event.ts';
import { validateSelect } from '../cached-query/query-plan.ts';
import { compileWhere, type RowPredicate } from '../cached-query/where-filter.ts';
import type { TableInfo } from '../table-info.ts';

export class InvalidRowFilterError extends Error {
  override readonly name = 'InvalidRowFilterError';
  readonly code = 'BAD_USER_INPUT';
}

/** undefined when there is no `where`; throws InvalidRowFilterError when it is not in the supported subset. */
export function compileRowFilter(where: string | undefined, table: Pick<TableInfo, 'columns'>, source: SourceKind): RowPredicate | undefined {
  if (!where || !where.trim()) return undefined;
  try {
    const ast = validateSelect(`SELECT * FROM t WHERE ${where}`, source === 'postgres' ? 'postgres' : 'mysql') as { where?: unknown };
    const columns = new Map<string, ColumnType>(table.columns.map((c) => [c.name, c]));
    return compileWhere((ast.where ?? null) as Parameters<typeof compileWhere>[0], columns, new Map());
  } catch (err) {
    throw new InvalidRowFilterError(`where "${where}" cannot be used: ${(err as Error).message}`, { cause: err });
  }
}
