/** MariaDB statements with their values as literals: the same text as mysql2 formatting the placeholder form. */
import mysql from 'mysql2';
import { describe, expect, it } from 'vitest';
import type { ColumnType, Row } from '../../../../src/replication/change-event.ts';
import { insertSql, literalTuples, mysqlParams, mysqlSites } from '../../../../src/replication/apply/mysql-sql.ts';
import { MARIADB_CAPS } from '../../../../src/replication/apply/type-map.ts';

const columns: ColumnType[] = [
  { name: 'id', kind: 'int', sourceType: 'bigint', size: 8 },
  { name: 'small', kind: 'int', sourceType: 'tinyint', size: 1 },
  { name: 'big', kind: 'int', sourceType: 'bigint unsigned', size: 8, unsigned: true },
  { name: 'amount', kind: 'decimal', sourceType: 'decimal(20,4)', precision: 20, scale: 4 },
  { name: 'ratio', kind: 'float', sourceType: 'double' },
  { name: 'f4', kind: 'float', sourceType: 'float', size: 4 },
  { name: 'note', kind: 'text', sourceType: 'varchar(255)', length: 255 },
  { name: 'blob', kind: 'binary', sourceType: 'varbinary(64)', length: 64 },
  { name: 'at', kind: 'datetime', sourceType: 'datetime(6)', fsp: 6 },
  { name: 'doc', kind: 'json', sourceType: 'json' },
  { name: 'mood', kind: 'enum', sourceType: "enum('ok','sad')", values: ['ok', 'sad'] },
];

const rows: Row[] = [
  { id: 1, small: -128, big: '18446744073709551615', amount: '12345.6789', ratio: 0.1, f4: 3.4028234663852886e38, note: "it's a \\ back\nslash\0 \"quoted\" \u001a", blob: Buffer.from([0, 1, 2, 255]).toString('base64'), at: '2024-02-29T13:14:15.123456', doc: '{"a": [1, "x\'y"]}', mood: 'sad' },
  { id: 2, small: null, big: null, amount: null, ratio: -0, f4: null, note: '', blob: null, at: null, doc: null, mood: null },
  { id: 3, small: 127, big: 9007199254740993n as unknown as string, amount: '-0.0001', ratio: 1e300, f4: -1.5, note: 'ünïcødé 😀', blob: '', at: '9999-12-31 23:59:59', doc: 'null', mood: 'ok' },
];

describe('literalTuples', () => {
  it('writes each value as mysql2 formats its parameter, for every kind the applier sends', () => {
    const sites = mysqlSites({ schema: 'db', table: 't' }, columns, ['id'], true);
    const escape = (v: unknown) => mysql.escape(v as never);
    const literal = insertSql({ schema: 'db', table: 't' }, columns, rows.length, ['id'], literalTuples(rows, sites, MARIADB_CAPS, escape));
    const formatted = mysql.format(insertSql({ schema: 'db', table: 't' }, columns, rows.length, ['id']), mysqlParams(rows, sites, MARIADB_CAPS) as never);
    expect(literal).toBe(formatted);
    expect(literal).toContain("VALUES (1, -128, 18446744073709551615, 12345.6789, 0.1, ");
    expect(literal).toContain("'it\\'s a \\\\ back\\nslash\\0 \\\"quoted\\\" \\Z'");
    expect(literal).toContain("X'000102ff'");
    expect(literal).toContain('(2, NULL, NULL, NULL, 0, NULL, \'\', NULL, NULL, NULL, NULL)');
  });

  it('refuses a value the destination cannot hold, as the parameter form does', () => {
    const sites = mysqlSites({ schema: 'db', table: 't' }, columns, ['id'], true);
    const bad: Row = { ...rows[0]!, small: 128 };
    expect(() => literalTuples([bad], sites, MARIADB_CAPS, (v) => mysql.escape(v as never))).toThrow(/small/);
    expect(() => mysqlParams([bad], sites, MARIADB_CAPS)).toThrow(/small/);
  });
});
