/** Row events for a MariaDB destination (mysql-binlog-rows.ts) and the kept row images they are made of (mysql-row-images.ts). */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BinlogRows, formatDescription, normalType } from '../../../../src/replication/apply/mysql-binlog-rows.ts';
import { allColumns, keepRowImage, rowImageOf, tableMapRestAt, type RowsImage, type TableMapImage } from '../../../../src/replication/mysql-row-images.ts';
import type { ColumnType } from '../../../../src/replication/change-event.ts';

/** The format description event a MariaDB 10.11.19 server wrote at the start of a binlog (mariadb-binlog --base64-output). */
const SERVER_FDE = 'npEWaw8BAAAA/AAAAAABAAAAAAQAMTAuMTEuMTktTWFyaWFEQi0wK2RlYjEydTEtbG9nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEzgNAAgAEgAEBAQEEgAA5AAEGggAAAAICAgCAAAACgoKAAAAAAAACgoKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEEwQADQgICAoKCgGuvwmI';

/** A TABLE_MAP body: table id 7, flags 1, schema "s", table "t", then the rest (column count 2, types LONG and VARCHAR, ...). */
const rest = Buffer.from([2, 3, 15, 2, 0x28, 0, 2, 0xfe]);
const mapBody = Buffer.concat([Buffer.from([7, 0, 0, 0, 0, 0, 1, 0, 1, 0x73, 0, 1, 0x74, 0]), rest]);
const map: TableMapImage = { body: mapBody, restAt: tableMapRestAt(mapBody), names: ['id', 'v'], charsets: [null, 'utf8mb4'] };
const col = (name: string, sourceType: string): ColumnType => ({ name, kind: sourceType.startsWith('int') ? 'int' : 'text', sourceType });

/** Events of a BINLOG statement: type, post-header flags and what follows the common header, checksums verified. */
function events(statement: string): { type: number; flags: number; post: Buffer }[] {
  const buf = Buffer.from(/^BINLOG '(.*)'$/s.exec(statement)![1]!, 'base64');
  const out = [];
  for (let p = 0; p < buf.length;) {
    const len = buf.readUInt32LE(p + 9);
    const ev = buf.subarray(p, p + len);
    expect(ev.readUInt32LE(len - 4)).toBe(crc32(ev.subarray(0, len - 4)) >>> 0);
    out.push({ type: ev[4]!, flags: ev.readUInt16LE(19 + 6), post: ev.subarray(19, len - 4) });
    p += len;
  }
  return out;
}

describe('row events for a MariaDB destination', () => {
  it('writes the format description event the server writes, byte for byte', () => {
    const want = Buffer.from(SERVER_FDE, 'base64');
    const got = formatDescription('10.11.19-MariaDB-0+deb12u1-log', 1);
    // The creation time and the position in the file are the server's own; the checksum follows them.
    want.copy(got, 0, 0, 4);
    got.writeUInt32LE(want.readUInt32LE(13), 13);
    got.writeUInt32LE(crc32(got.subarray(0, got.length - 4)) >>> 0, got.length - 4);
    expect(got.equals(want)).toBe(true);
  });

  it('compares column types without integer display widths or the case of the type name, ENUM labels with theirs', () => {
    expect(normalType('int(11)')).toBe('int');
    expect(normalType('BIGINT(20) unsigned')).toBe('bigint unsigned');
    expect(normalType('decimal(12,2)')).toBe('decimal(12,2)');
    expect(normalType("enum('a','Zz')")).not.toBe(normalType("enum('a','zz')"));
  });

  it('finds where a table map\'s columns start, and whether a bitmap covers every column', () => {
    expect(map.restAt).toBe(14);
    expect(allColumns(Buffer.from([0b111]), 3)).toBe(true);
    expect(allColumns(Buffer.from([0b101]), 3)).toBe(false);
  });

  it('keeps an image on the row it was made for only', () => {
    const block: RowsImage = { map, bytes: Buffer.from([1, 2, 3, 4, 5, 6]), pairs: false, spans: [0, 2, 2, 6] };
    const a = { id: 1, v: 'x' };
    const b = { id: 2, v: 'y' };
    keepRowImage(a, block, 0);
    keepRowImage(b, block, 1);
    expect(rowImageOf(a)).toMatchObject({ start: 0, mid: 0, end: 2 });
    expect(rowImageOf(b)).toMatchObject({ start: 2, mid: 2, end: 6 });
    // Invisible to copies, keys and JSON; a copy does not carry it.
    expect(Object.keys(a)).toEqual(['id', 'v']);
    expect(JSON.stringify(a)).toBe('{"id":1,"v":"x"}');
    expect(rowImageOf({ ...a })).toBeUndefined();
  });

  it('sends inserts as Write_rows and updates as Update_rows under the destination\'s names, the rest as SQL', async () => {
    const rows = new BinlogRows(true);
    const select = async (sql: string): Promise<Record<string, unknown>[]> => {
      if (sql.includes('VERSION()')) return [{ v: '10.11.19-MariaDB', id: 9 }];
      if (sql.includes('information_schema.COLUMNS')) return [{ n: 'id', t: 'int(11)', cs: null, x: '', k: 'PRI' }, { n: 'v', t: 'varchar(10)', cs: 'utf8mb4', x: '' }];
      if (sql.includes('STATISTICS')) return [{ n: 'id' }];
      return [{ n: 0 }];
    };
    await rows.setUp(select);
    const dest = { schema: 'dst', table: 'tt' };
    const inserts: RowsImage = { map, bytes: Buffer.from([0xa1, 0xa2, 0xa3]), pairs: false, spans: [0, 1, 1, 3] };
    const updates: RowsImage = { map, bytes: Buffer.from([0xb1, 0xb2, 0xb3, 0xb4]), pairs: true, spans: [0, 1, 4] };
    const r1 = { id: 1, v: 'a' }; const r2 = { id: 2, v: 'b' }; const r3 = { id: 3, v: 'c' }; const plain = { id: 4, v: 'd' };
    keepRowImage(r1, inserts, 0); keepRowImage(r2, inserts, 1); keepRowImage(r3, updates, 0, { id: 3, v: 'was c' });
    // An update that moved its row to another key goes as SQL (the plan deletes the old key first).
    const moved = { id: 5, v: 'e' };
    keepRowImage(moved, updates, 0, { id: 50, v: 'e' });
    await rows.prepare(select, [{ dest, rows: [r1] }]);
    const out = rows.split(dest, [col('id', 'int(11)'), col('v', 'varchar(10)')], ['id'], [r1, plain, r2, r3, moved]);
    expect(out.rest).toEqual([plain, moved]);
    const [tm, write, update] = events(out.statement!);
    expect(tm!.type).toBe(19);
    // The destination's names, the source's column descriptions after them.
    expect(tm!.post.subarray(8, 8 + 1 + 3 + 1 + 1 + 2 + 1)).toEqual(Buffer.from([3, 0x64, 0x73, 0x74, 0, 2, 0x74, 0x74, 0]));
    expect(tm!.post.subarray(8 + 9)).toEqual(rest);
    expect([write!.type, write!.flags, [...write!.post.subarray(6 + 2)]]).toEqual([23, 0, [2, 0b11, 0xa1, 0xa2, 0xa3]]);
    expect([update!.type, update!.flags, [...update!.post.subarray(6 + 2)]]).toEqual([24, 1, [2, 0b11, 0b11, 0xb1, 0xb2, 0xb3, 0xb4]]);
    // Only rows that go as SQL: no statement (a table map without rows events would leave the table open).
    expect(rows.split(dest, [col('id', 'int(11)'), col('v', 'varchar(10)')], ['id'], [moved, plain])).toEqual({ rest: [moved, plain] });
    // Another type at the destination: nothing as row events.
    const other = new BinlogRows(true);
    await other.setUp(select);
    await other.prepare(select, [{ dest, rows: [r1] }]);
    expect(other.split(dest, [col('id', 'int(11)'), col('v', 'text')], ['id'], [r1]).statement).toBeUndefined();
  });
});
