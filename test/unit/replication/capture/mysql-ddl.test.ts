/** mysql-ddl.ts: table renames in ALTER TABLE and column renames (RENAME COLUMN, CHANGE to another name). */
import { describe, expect, it } from 'vitest';
import { columnRenames, DdlKind, parseDdl, renameOnlyClauses } from '../../../../src/replication/capture/mysql-ddl.ts';

describe('parseDdl renames', () => {
  it('RENAME TABLE names every pair, unqualified names in the default schema', () => {
    expect(parseDdl('RENAME TABLE a TO b, `x`.c TO `x`.`d e`;', 'db')).toEqual({
      kind: DdlKind.RenameTable, tables: [{ schema: 'db', table: 'a' }, { schema: 'x', table: 'c' }], renamedTo: [{ schema: 'db', table: 'b' }, { schema: 'x', table: 'd e' }],
    });
  });

  it('ALTER TABLE ... RENAME [TO|AS] carries the new name, in the table\'s database when unqualified', () => {
    expect(parseDdl('ALTER TABLE t RENAME TO u', 'db')).toEqual({ kind: DdlKind.AlterTable, tables: [{ schema: 'db', table: 't' }], renamedTo: [{ schema: 'db', table: 'u' }] });
    expect(parseDdl('ALTER TABLE `s`.t RENAME AS `u`;', 'db')).toEqual({ kind: DdlKind.AlterTable, tables: [{ schema: 's', table: 't' }], renamedTo: [{ schema: 's', table: 'u' }] });
    expect(parseDdl('ALTER TABLE s.t RENAME s2.u', 'db')!.renamedTo).toEqual([{ schema: 's2', table: 'u' }]);
    expect(parseDdl('ALTER TABLE t ADD COLUMN c int, RENAME TO u', 'db')!.renamedTo).toEqual([{ schema: 'db', table: 'u' }]);
  });

  it('column and index renames are not table renames', () => {
    expect(parseDdl('ALTER TABLE t RENAME COLUMN a TO b', 'db')!.renamedTo).toBeUndefined();
    expect(parseDdl('ALTER TABLE t RENAME INDEX a TO b', 'db')!.renamedTo).toBeUndefined();
    expect(parseDdl('ALTER TABLE t RENAME KEY a TO b', 'db')!.renamedTo).toBeUndefined();
    expect(parseDdl("ALTER TABLE t ADD COLUMN c varchar(10) DEFAULT 'RENAME TO x'", 'db')!.renamedTo).toBeUndefined();
  });
});

describe('columnRenames', () => {
  it('finds RENAME COLUMN and CHANGE to another name, in order', () => {
    expect(columnRenames('ALTER TABLE t RENAME COLUMN a TO b')).toEqual([['a', 'b']]);
    expect(columnRenames('/* c */ ALTER TABLE `s`.`t` CHANGE COLUMN `a` `b c` varchar(20), RENAME COLUMN IF EXISTS x TO `y`;')).toEqual([['a', 'b c'], ['x', 'y']]);
    expect(columnRenames('ALTER TABLE t CHANGE a b int NOT NULL, ADD COLUMN z decimal(10,2)')).toEqual([['a', 'b']]);
  });

  it('ignores CHANGE keeping the name and everything else', () => {
    expect(columnRenames('ALTER TABLE t CHANGE a a bigint')).toEqual([]);
    expect(columnRenames('ALTER TABLE t MODIFY a bigint, ADD COLUMN c int')).toEqual([]);
    expect(columnRenames('ALTER TABLE t RENAME TO u')).toEqual([]);
    expect(columnRenames('RENAME TABLE a TO b')).toEqual([]);
  });
});

describe('renameOnlyClauses', () => {
  it('lists the renames of a statement that does nothing else', () => {
    expect(renameOnlyClauses('ALTER TABLE t RENAME COLUMN a TO b, CHANGE COLUMN `c` `d` VARCHAR( 20 ) NOT NULL;')).toEqual([
      { from: 'a', to: 'b' }, { from: 'c', to: 'd', type: 'varchar(20)' },
    ]);
    expect(renameOnlyClauses('ALTER TABLE t CHANGE note remark text')).toEqual([{ from: 'note', to: 'remark', type: 'text' }]);
  });

  it('is undefined for anything else', () => {
    expect(renameOnlyClauses('ALTER TABLE t RENAME COLUMN a TO b, ADD COLUMN c int')).toBeUndefined();
    expect(renameOnlyClauses('ALTER TABLE t MODIFY a bigint')).toBeUndefined();
    expect(renameOnlyClauses('RENAME TABLE a TO b')).toBeUndefined();
  });
});
