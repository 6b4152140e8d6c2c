/** Change events for unit tests of the engine's pure modules. */
import { Operation, type ChangeEvent, type ColumnType, type Row } from '../../../src/replication/change-event.ts';

export const intCol = (name: string): ColumnType => ({ name, kind: 'int', sourceType: 'int', size: 4 });
export const textCol = (name: string): ColumnType => ({ name, kind: 'text', sourceType: 'varchar(100)', length: 100 });

const base = { source: 'postgres' as const, sequence: '0.0.0', txid: '1', commitSequence: '1', index: 0, commitTime: 0 };

export function ev(op: Operation, before: Row | null, after: Row | null, o: { schema?: string; table?: string; key?: string[]; columns?: ColumnType[]; ddl?: string } = {}): ChangeEvent {
  return {
    ...base, op, schema: o.schema ?? 's', table: o.table ?? 't', key: o.key ?? ['id'], before, after,
    columns: o.columns ?? [intCol('id'), textCol('v')], ...(o.ddl ? { ddl: o.ddl } : {}),
  };
}
export const ins = (after: Row, o?: Parameters<typeof ev>[3]) => ev(Operation.Insert, null, after, o);
export const upd = (before: Row, after: Row, o?: Parameters<typeof ev>[3]) => ev(Operation.Update, before, after, o);
export const del = (before: Row, o?: Parameters<typeof ev>[3]) => ev(Operation.Delete, before, null, o);
export const ddl = (statement: string, o?: Parameters<typeof ev>[3]) => ev(Operation.Ddl, null, null, { ...o, ddl: statement });
