/** apply/ddl.ts: which renames the appliers follow, and which fail the job. */
import { describe, expect, it } from 'vitest';
import { classifyDdl, tableRenameOf } from '../../../../src/replication/apply/ddl.ts';
import { Operation } from '../../../../src/replication/change-event.ts';
import { UnsupportedDdlError } from '../../../../src/replication/errors.ts';

const at = { schema: 'db', table: 't' };

describe('classifyDdl renames', () => {
  it('column renames from either engine; CHANGE to another name renames and retypes', () => {
    expect(classifyDdl('ALTER TABLE t RENAME COLUMN a TO b', { at })).toEqual({ kind: 'columns', drops: [], renames: [['a', 'b']], retypes: [] });
    expect(classifyDdl('ALTER TABLE "public"."t" RENAME COLUMN "a" TO "b"', { fromPgCapture: true })).toEqual({ kind: 'columns', drops: [], renames: [['a', 'b']], retypes: [] });
    expect(classifyDdl('ALTER TABLE t CHANGE `a` `b` varchar(20)', { at })).toEqual({ kind: 'columns', drops: [], renames: [['a', 'b']], retypes: ['b'] });
    expect(classifyDdl('ALTER TABLE t CHANGE a a bigint', { at })).toEqual({ kind: 'columns', drops: [], renames: [], retypes: ['a'] });
  });

  it('table renames within a schema', () => {
    expect(classifyDdl('RENAME TABLE t TO u', { at })).toEqual({ kind: 'rename-table', from: at, to: { schema: 'db', table: 'u' } });
    expect(classifyDdl('ALTER TABLE `t` RENAME AS `u`', { at })).toEqual({ kind: 'rename-table', from: at, to: { schema: 'db', table: 'u' } });
    // The PostgreSQL capture's statement; its event already names the new table.
    expect(classifyDdl('ALTER TABLE "public"."a" RENAME TO "b"', { fromPgCapture: true, at: { schema: 'public', table: 'b' } }))
      .toEqual({ kind: 'rename-table', from: { schema: 'public', table: 'a' }, to: { schema: 'public', table: 'b' } });
    // Several pairs: the one of the event's table.
    expect(classifyDdl('RENAME TABLE x TO y, db.t TO u', { at })).toEqual({ kind: 'rename-table', from: at, to: { schema: 'db', table: 'u' } });
  });

  it('fails quoting the statement: another schema, mixed with other changes, a pair not of this table', () => {
    for (const stmt of ['RENAME TABLE t TO other.u', 'ALTER TABLE t RENAME TO other.u', 'ALTER TABLE t RENAME TO u, ADD COLUMN c int', 'RENAME TABLE x TO y', 'ALTER TABLE "public"."t" SET SCHEMA "other"']) {
      expect(() => classifyDdl(stmt, { at }), stmt).toThrow(UnsupportedDdlError);
      expect(() => classifyDdl(stmt, { at }), stmt).toThrow(stmt);
    }
  });

  it('tableRenameOf: the rename of a DDL event, never throwing', () => {
    const ev = (ddl: string) => ({ op: Operation.Ddl, ddl, schema: 'db', table: 't' });
    expect(tableRenameOf(ev('RENAME TABLE t TO u'))).toEqual({ from: at, to: { schema: 'db', table: 'u' } });
    expect(tableRenameOf(ev('ALTER TABLE t RENAME COLUMN a TO b'))).toBeUndefined();
    expect(tableRenameOf(ev('RENAME TABLE t TO other.u'))).toBeUndefined();
    expect(tableRenameOf({ ...ev('RENAME TABLE t TO u'), op: Operation.Insert })).toBeUndefined();
  });
});
