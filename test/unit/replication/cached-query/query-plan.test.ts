import { describe, expect, it } from 'vitest';
import { analyze, validateSelect } from '../../../../src/replication/cached-query/query-plan.ts';
import { QueryRefusedError, RefusalCode } from '../../../../src/replication/cached-query/query-errors.ts';
import { compileWhere } from '../../../../src/replication/cached-query/where-filter.ts';
import { addDecimal, decimalToString, divideDecimal, parseDecimal, subDecimal } from '../../../../src/replication/cached-query/decimal.ts';
import { parseConnectionString } from '../../../../src/services/connection-string.ts';
import type { ColumnType } from '../../../../src/replication/change-event.ts';

function refusal(sql: string, dialect: 'postgres' | 'mysql' = 'postgres'): RefusalCode | undefined {
  try { validateSelect(sql, dialect); return undefined; } catch (err) { if (err instanceof QueryRefusedError) return err.code; throw err; }
}

describe('validateSelect', () => {
  it('accepts one SELECT and refuses everything else with a reason', () => {
    expect(refusal('SELECT status, count(*) FROM orders GROUP BY status')).toBeUndefined();
    expect(refusal('SELECT status, count(*) FROM orders GROUP BY status', 'mysql')).toBeUndefined();
    expect(refusal('SELECT 1;')).toBeUndefined();
    expect(refusal('CREATE TABLE x (a int)')).toBe(RefusalCode.Ddl);
    expect(refusal('TRUNCATE orders')).toBe(RefusalCode.Ddl);
    expect(refusal('UPDATE orders SET a = 1')).toBe(RefusalCode.NotSelect);
    expect(refusal('SELECT 1; DROP TABLE orders')).toBe(RefusalCode.MultipleStatements);
    expect(refusal('SELECT pg_sleep(1)')).toBe(RefusalCode.SideEffect);
    expect(refusal("SELECT lo_export(1, '/tmp/x')")).toBe(RefusalCode.SideEffect);
    expect(refusal("SELECT * FROM dblink('host=x', 'select 1') AS t(a int)")).not.toBeUndefined();
    expect(refusal('SELECT benchmark(1000000, md5(1))', 'mysql')).toBe(RefusalCode.SideEffect);
    expect(refusal("SELECT get_lock('a', 10)", 'mysql')).toBe(RefusalCode.SideEffect);
    expect(refusal('SELECT * INTO t2 FROM orders')).toBe(RefusalCode.Writes);
    expect(refusal('SELECT @x := 1', 'mysql')).toBe(RefusalCode.Writes);
    expect(refusal('SELECT id FROM orders FOR UPDATE', 'mysql')).toBe(RefusalCode.Writes);
    expect(refusal('SELEC 1')).toBe(RefusalCode.Syntax);
  });
});

describe('analyze', () => {
  const plan = (sql: string, d: 'postgres' | 'mysql' = 'postgres') => analyze(sql, d, validateSelect(sql, d));
  it('finds the incremental shape', () => {
    const a = plan('SELECT status, count(*), sum(amount) AS total, avg(amount) FROM orders WHERE amount > 0 GROUP BY status');
    expect(a.shape?.groupBy).toEqual(['status']);
    expect(a.shape?.aggregates).toEqual([{ fn: 'count', column: null }, { fn: 'sum', column: 'amount' }, { fn: 'avg', column: 'amount' }]);
    expect(a.shape?.outputs.map((o) => o.name)).toEqual(['status', 'count', 'total', 'avg']);
    expect(plan('SELECT count(*) FROM orders', 'mysql').shape?.outputs[0]?.name).toBe('count(*)');
  });
  it('says why other queries are re-run', () => {
    expect(plan('SELECT o.status, count(*) FROM orders o JOIN c ON c.id = o.cid GROUP BY o.status').rerunReason).toMatch(/joins/);
    expect(plan('SELECT count(*) FROM orders WHERE id IN (SELECT id FROM x)').rerunReason).toMatch(/subquery/);
    expect(plan('SELECT status, count(*), rank() OVER (ORDER BY status) FROM orders GROUP BY status').rerunReason).toMatch(/window/);
    expect(plan('SELECT count(DISTINCT status) FROM orders').rerunReason).toMatch(/DISTINCT/);
    expect(plan('SELECT status, count(*) FROM orders GROUP BY status ORDER BY status').rerunReason).toMatch(/ORDER BY/);
  });
});

describe('compileWhere', () => {
  const cols = new Map<string, ColumnType>([
    ['amount', { name: 'amount', kind: 'decimal', sourceType: 'numeric(10,2)' }],
    ['status', { name: 'status', kind: 'text', sourceType: 'text' }],
  ]);
  const where = (sql: string) => compileWhere((validateSelect(`SELECT 1 FROM t WHERE ${sql}`, 'postgres') as any).where, cols, new Map());
  it('uses three-valued logic and exact decimals', () => {
    const p = where("amount > 0.1 AND status IN ('a', 'b')");
    expect(p({ amount: '0.10', status: 'a' })).toBe(false);
    expect(p({ amount: '0.11', status: 'b' })).toBe(true);
    expect(p({ amount: null, status: 'a' })).toBe(null);
    expect(where('amount IS NULL OR amount BETWEEN -1 AND 1')({ amount: '-0.50' })).toBe(true);
    expect(where("NOT (status = 'x')")({ status: null })).toBe(null);
    expect(() => where("status LIKE 'a%'")).toThrow(/LIKE/);
    expect(() => where("status > 'a'")).toThrow(/collation/);
  });
});

describe('decimal', () => {
  it('adds, subtracts and divides exactly', () => {
    const a = parseDecimal('0.10')!; const b = parseDecimal('0.2')!;
    expect(decimalToString(addDecimal(a, b))).toBe('0.30');
    expect(decimalToString(subDecimal(a, b))).toBe('-0.10');
    expect(decimalToString(divideDecimal(parseDecimal('3.75')!, 2n, 16))).toBe('1.8750000000000000');
    expect(decimalToString(divideDecimal(parseDecimal('-2')!, 3n, 4))).toBe('-0.6667');
  });
});

describe('parseConnectionString', () => {
  it('reads the four schemes, defaults and TLS modes', () => {
    expect(parseConnectionString('postgresql://u:p%40ss@db:6543/shop?sslmode=require')).toEqual({ kind: 'postgres', host: 'db', port: 6543, user: 'u', password: 'p@ss', database: 'shop', tls: { enabled: true, rejectUnauthorized: false } });
    expect(parseConnectionString('mariadb://root@127.0.0.1/app')).toMatchObject({ kind: 'mysql', port: 3306, password: '', database: 'app', tls: null });
    expect(parseConnectionString('mysql://root:x@h?ssl-mode=VERIFY_IDENTITY')).toMatchObject({ database: null, tls: { enabled: true, rejectUnauthorized: true } });
    expect(parseConnectionString('postgres://u@h')).toMatchObject({ port: 5432 });
    expect(() => parseConnectionString('sqlserver://u@h/db')).toThrow(/not supported/);
    expect(() => parseConnectionString('postgres://h/db')).toThrow(/no user/);
  });
});
