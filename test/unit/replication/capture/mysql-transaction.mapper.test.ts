/** rowMeta: rows named as they were written (binlog_row_metadata=FULL) typed against the table as it is now. */
import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../../../../src/replication/change-event.ts';
import { renamedShape, rowMeta, type TableMeta } from '../../../../src/replication/capture/mysql-transaction.mapper.ts';

const col = (name: string, kind: ColumnType['kind'], sourceType: string): ColumnType => ({ name, kind, sourceType });
const meta = (columns: ColumnType[], key: string[]): TableMeta => ({
  info: { schema: 'db', table: 't', columns, key, estimatedRows: 0 }, byName: new Map(columns.map((c) => [c.name, c])), unknown: new Map(),
});

describe('rowMeta', () => {
  const now = meta([col('id', 'int', 'int(11)'), col('title', 'text', 'varchar(20)'), col('amount', 'decimal', 'decimal(8,2)')], ['id']);

  it('keeps the metadata when the row has the names the table has', () => {
    expect(rowMeta(now, { id: 1, title: 'a', amount: '1.00' })).toBe(now);
  });

  it('types a renamed column by the column at its place (and the key, when it is the one renamed)', () => {
    const m = rowMeta(now, { id: 1, title: 'a', price: '1.00' });
    expect(m.info.columns.map((c) => [c.name, c.sourceType])).toEqual([['id', 'int(11)'], ['title', 'varchar(20)'], ['price', 'decimal(8,2)']]);
    expect(m.byName.get('price')?.kind).toBe('decimal');
    expect(rowMeta(now, { ident: 1, title: 'b', amount: '1' }).info.key).toEqual(['ident']);
  });

  it('falls back (guessed types) when columns moved or their number changed', () => {
    expect(rowMeta(now, { id: 1, amount: '1.00', extra: 'x' })).toBe(now);
    expect(rowMeta(now, { id: 1, title: 'a' , amount: '1', extra: 2 })).toBe(now);
  });
});

describe('renamedShape', () => {
  const before = { schema: 'db', table: 't', columns: [col('id', 'int', 'int(11)'), col('note', 'text', 'text'), col('n', 'int', 'int(11)')], key: ['id'], estimatedRows: 0 };

  it('renames columns (and the key) for RENAME COLUMN and a CHANGE keeping the type', () => {
    expect(renamedShape(before, 'ALTER TABLE t RENAME COLUMN id TO ident, CHANGE note remark TEXT')).toEqual({
      ...before, columns: [col('ident', 'int', 'int(11)'), col('remark', 'text', 'text'), col('n', 'int', 'int(11)')], key: ['ident'],
    });
    expect(before.columns[1]!.name).toBe('note');
  });

  it('is undefined for a CHANGE of type, an unknown column, a taken name or other clauses', () => {
    expect(renamedShape(before, 'ALTER TABLE t CHANGE n m bigint')).toBeUndefined();
    expect(renamedShape(before, 'ALTER TABLE t RENAME COLUMN x TO y')).toBeUndefined();
    expect(renamedShape(before, 'ALTER TABLE t RENAME COLUMN note TO n')).toBeUndefined();
    expect(renamedShape(before, 'ALTER TABLE t RENAME COLUMN note TO x, DROP COLUMN n')).toBeUndefined();
  });
});
