/** Batch planning: net effect per key, deletes before upserts, keyless order, DDL barriers, partial images. */
import { describe, expect, it } from 'vitest';
import { chunkRows, planBatch } from '../../../../src/replication/apply/batch-plan.ts';
import { ddl, del, ins, intCol, textCol, upd } from '../support-events.ts';

const ref = { schema: 's', table: 't' };

describe('planBatch, keyed tables', () => {
  it('collapses a row\'s changes to the last image', () => {
    const steps = planBatch([ins({ id: 1, v: 'a' }), upd({ id: 1, v: 'a' }, { id: 1, v: 'b' }), upd({ id: 1, v: 'b' }, { id: 1, v: 'c' })]);
    expect(steps).toEqual([{ kind: 'upsert', ref, columns: [intCol('id'), textCol('v')], key: ['id'], rows: [{ id: 1, v: 'c' }], fresh: true }]);
  });

  it('marks upserts fresh only where every row\'s first change in the batch was its insert', () => {
    const steps = planBatch([
      ins({ id: 1, v: 'a' }), upd({ id: 2, v: 'x' }, { id: 2, v: 'y' }), upd({ id: 1, v: 'a' }, { id: 1, v: 'b' }),
      del({ id: 3, v: 'c' }), ins({ id: 3, v: 'd' }), upd({ id: 4, v: 'e' }, { id: 5, v: 'e' }), ins({ id: 6, v: 'f' }),
    ]);
    const upserts = steps.flatMap((s) => (s.kind === 'upsert' ? [{ fresh: s.fresh === true, ids: s.rows.map((r) => r.id) }] : []));
    // 1 (insert, then update) and 6 are fresh; 2 (update), 3 (deleted, then inserted again) and 5 (a key that moved there) are not.
    expect(upserts).toEqual([{ fresh: false, ids: [2, 3, 5] }, { fresh: true, ids: [1, 6] }]);
    expect(steps[0]).toMatchObject({ kind: 'delete', keys: [{ id: 4 }] });
  });

  it('tells apart key values that only look alike: 5 and "5", NULL, a string starting with NUL, JSON-like text and a non-scalar', () => {
    const ids: unknown[] = [5, '5', null, '\u0000s5', '\u0000j[true]', 'j[true]', true, [1]];
    const steps = planBatch([...ids.map((id, i) => ins({ id, v: `a${i}` } as never)), ...ids.map((id, i) => upd({ id, v: `a${i}` } as never, { id, v: `b${i}` } as never))]);
    const rows = steps.flatMap((st) => (st.kind === 'upsert' ? st.rows : []));
    expect(rows.map((r) => r.v).sort()).toEqual(ids.map((_, i) => `b${i}`).sort());
  });

  it('turns insert then delete into a delete of the key only', () => {
    const steps = planBatch([ins({ id: 1, v: 'a' }), del({ id: 1, v: 'a' })]);
    expect(steps).toEqual([{ kind: 'delete', ref, columns: [intCol('id')], key: ['id'], keys: [{ id: 1 }] }]);
  });

  it('runs deletes before upserts so a freed key can be taken in the same batch', () => {
    const steps = planBatch([ins({ id: 2, v: 'x' }), del({ id: 1, v: 'a' })]);
    expect(steps.map((s) => s.kind)).toEqual(['delete', 'upsert']);
  });

  it('splits a key change into a delete of the old key and an upsert carrying what was known of the row', () => {
    const steps = planBatch([ins({ id: 1, v: 'a' }), upd({ id: 1 }, { id: 2 })]);
    expect(steps).toEqual([
      { kind: 'delete', ref, columns: [intCol('id')], key: ['id'], keys: [{ id: 1 }] },
      { kind: 'upsert', ref, columns: [intCol('id'), textCol('v')], key: ['id'], rows: [{ id: 2, v: 'a' }] },
    ]);
  });

  it('merges partial images and groups upserts by the columns present, in the order of each key\'s last change', () => {
    // Row 1's second image leaves v out (an unchanged TOASTed value): the first image's v is kept.
    const steps = planBatch([upd({ id: 1 }, { id: 1, v: 'b' }), upd({ id: 2 }, { id: 2 }), upd({ id: 1 }, { id: 1 })]);
    const upserts = steps.filter((s) => s.kind === 'upsert');
    expect(upserts).toHaveLength(2);
    expect(upserts.map((s) => s.kind === 'upsert' && s.columns.map((c) => c.name))).toEqual([['id'], ['id', 'v']]);
    expect(upserts.flatMap((s) => (s.kind === 'upsert' ? s.rows : []))).toEqual([{ id: 2 }, { id: 1, v: 'b' }]);
  });

  it('plans each table apart, in first-appearance order', () => {
    const steps = planBatch([ins({ id: 1 }, { table: 'b' }), ins({ id: 1 }, { table: 'a' })]);
    expect(steps.map((s) => s.kind !== 'ddl' && s.ref.table)).toEqual(['b', 'a']);
  });
});

describe('planBatch, keyless tables', () => {
  const nk = { key: [] as string[] };
  it('keeps order: consecutive inserts grouped, an update a delete of one row plus an insert', () => {
    const steps = planBatch([ins({ id: 1, v: 'a' }, nk), ins({ id: 2, v: 'b' }, nk), upd({ id: 1, v: 'a' }, { id: 1, v: 'c' }, nk), del({ id: 2, v: 'b' }, nk)]);
    expect(steps.map((s) => s.kind)).toEqual(['insert', 'delete-one', 'insert', 'delete-one']);
    expect(steps[0]).toMatchObject({ kind: 'insert', rows: [{ id: 1, v: 'a' }, { id: 2, v: 'b' }] });
    expect(steps[1]).toMatchObject({ kind: 'delete-one', row: { id: 1, v: 'a' } });
    expect(steps[3]).toMatchObject({ kind: 'delete-one', row: { id: 2, v: 'b' } });
  });

  it('never collapses identical rows', () => {
    const steps = planBatch([ins({ id: 1, v: 'a' }, nk), ins({ id: 1, v: 'a' }, nk)]);
    expect(steps).toHaveLength(1);
    expect(steps[0]).toMatchObject({ kind: 'insert', rows: [{ id: 1, v: 'a' }, { id: 1, v: 'a' }] });
  });
});

describe('planBatch, DDL', () => {
  it('is a barrier: what came before is flushed first, what came after is planned apart', () => {
    const d = ddl('ALTER TABLE s.t ADD c int');
    const steps = planBatch([ins({ id: 1, v: 'a' }), d, upd({ id: 1, v: 'a' }, { id: 1, v: 'b' })]);
    expect(steps.map((s) => s.kind)).toEqual(['upsert', 'ddl', 'upsert']);
    expect(steps[1]).toEqual({ kind: 'ddl', event: d });
    expect(steps[2]).toMatchObject({ rows: [{ id: 1, v: 'b' }] });
  });
});

describe('chunkRows', () => {
  it('bounds statements by rows and by parameters', () => {
    const rows = Array.from({ length: 10 }, (_, i) => i);
    expect(chunkRows(rows, 1, 4, 1000)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(chunkRows(rows, 3, 100, 10).map((c) => c.length)).toEqual([3, 3, 3, 1]);
    expect(chunkRows(rows, 100, 100, 10).map((c) => c.length)).toEqual(Array(10).fill(1));
    expect(chunkRows([], 1, 10, 10)).toEqual([]);
  });
});
