import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../../../../src/replication/change-event.ts';
import { deleteKeysSql, guardCheckpointsText, insertSql, lockCheckpointText, pgLiterals, PG_LEDGER, writeCheckpointText } from '../../../../src/replication/apply/pg-sql.ts';
import type { ValueSite } from '../../../../src/replication/apply/value-params.ts';

/** PostgreSQL's own literal quoting, as pg's escapeLiteral does it for text without backslashes. */
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

describe('ledger statements with literal values', () => {
  it('are the parameterised ledger statements with each $n replaced by its literal', () => {
    expect(lockCheckpointText("job'1", 3, lit)).toBe(PG_LEDGER.lockCheckpoint.replace('$1', "'job''1'").replace('$2', '3'));
    expect(writeCheckpointText('j', 0, '1a.ff.3', lit)).toBe(
      PG_LEDGER.writeCheckpoint.replace('$1', "'j'").replace('$2', '0').replace('$3', "'1a.ff.3'"),
    );
    // A value holding `$2` is not substituted again.
    expect(writeCheckpointText('j$2', 0, 's', lit)).toContain("VALUES ('j$2', 0, 's', now())");
    expect(() => lockCheckpointText('j', 1.5, lit)).toThrow(/not an integer/);
  });
});

describe('row values as literals (a batch sent at once, pg.applier.ts applyAtOnce)', () => {
  const site = (name: string, kind: ColumnType['kind'], sourceType: string, extra: Partial<ColumnType> = {}): ValueSite =>
    ({ table: 's.t', column: { name, kind, sourceType, ...extra } as ColumnType });
  const sites = [
    site('i', 'int', 'integer', { size: 4 }), site('t', 'text', 'text'), site('b', 'binary', 'bytea'),
    site('f', 'bool', 'boolean'), site('s', 'set', "set('a','b\"c')", { values: ['a', 'b"c'] }),
  ];

  it('are the text node-pg sends for each bound parameter, quoted; NULL for null', () => {
    const vals = pgLiterals([{ i: 7, t: "it's \\ here", b: Buffer.from([0, 255]).toString('base64'), f: true, s: 'a,b"c' }, { i: 8, t: null, b: null, f: null, s: null }], sites);
    expect(vals).toEqual(["'7'", " E'it''s \\\\ here'", " E'\\\\x00ff'", "'true'", ` E'{"a","b\\\\"c"}'`, "'8'", 'NULL', 'NULL', 'NULL', 'NULL']);
    expect(insertSql({ schema: 's', table: 't' }, sites.map((x) => x.column), 2, ['i'], vals)).toBe(
      `INSERT INTO "s"."t" ("i", "t", "b", "f", "s") VALUES (${vals!.slice(0, 5).join(', ')}), (${vals!.slice(5).join(', ')}) `
      + 'ON CONFLICT ("i") DO UPDATE SET "t" = EXCLUDED."t", "b" = EXCLUDED."b", "f" = EXCLUDED."f", "s" = EXCLUDED."s"');
    expect(deleteKeysSql({ schema: 's', table: 't' }, [sites[0]!.column], 2, ["'7'", "'8'"])).toBe(`DELETE FROM "s"."t" WHERE "i" IN ('7'::integer, '8'::integer)`);
  });

  it('are refused for a value holding NUL (it would end the query text) and throw what toPgParam throws', () => {
    expect(pgLiterals([{ o: 'a\u0000b' }], [site('o', 'other', 'tsvector')])).toBeUndefined();
    expect(() => pgLiterals([{ i: 'x' }], [sites[0]!])).toThrow();
  });

  it('the guard locks the lanes\' rows and divides by zero unless each holds its expected checkpoint', () => {
    const g = guardCheckpointsText("j'1", new Map([[0, 's0'], [2, "s'2"]]));
    expect(g).toBe("SELECT 1 / (count(*) FILTER (WHERE (lane = 0 AND sequence = 's0') OR (lane = 2 AND sequence = 's''2')) = 2)::int AS checkpoints_as_expected"
      + " FROM (SELECT lane, sequence FROM tributary.tributary_checkpoints WHERE job_id = 'j''1' AND lane IN (0, 2) FOR UPDATE) AS lane_checkpoints");
    expect(() => guardCheckpointsText('j', new Map([[0.5, 's']]))).toThrow(/not integers/);
    expect(() => guardCheckpointsText('j', new Map())).toThrow();
  });
});
