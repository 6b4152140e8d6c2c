/** rowMeta: rows named as they were written (binlog_row_metadata=FULL) typed against the table as it is now. */
import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../../../../src/replication/change-event.ts';
import { rowMeta, type TableMeta } from '../../../../src/replication/capture/mysql-transaction.mapper.ts';

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
