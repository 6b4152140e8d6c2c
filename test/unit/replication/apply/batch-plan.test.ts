/** Batch planning: net effect per key, deletes before upserts, keyless order, DDL barriers, partial images. */
import { describe, expect, it } from 'vitest';
import { chunkRows, KeyedRows, planBatch } from '../../../../src/replication/apply/batch-plan.ts';
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

describe('planBatch, keys without a Map (KeyedRows)', () => {
  /** A random batch over one table: ascending runs of new keys, range updates, repeats, key changes, deletes, odd keys. */
  function randomBatch(seed: number) {
    let s = seed;
    const rnd = (n: number) => { s = (s * 1103515245 + 12345) % 2147483648; return s % n; };
    const odd: unknown[] = [Number.NaN, -0, 0, 2.5, '7', 'x', null, 1e15];
    const events = [];
    let next = 1 + rnd(1000);
    const seen: unknown[] = [];
    const n = 1 + rnd(400);
    for (let i = 0; i < n; i++) {
      // Odd seeds only: keys seen before and odd keys (even seeds stay in ascending runs, the Map never made).
      const r = rnd(seed % 2 === 0 ? 12 : 20);
      let id: unknown;
      if (r < 10) id = next++; // ascending run
      else if (r < 12) { next = rnd(2000); id = next++; } // a run starting elsewhere
      else if (r < 17 && seen.length) id = seen[rnd(seen.length)]; // a key seen before
      else id = odd[rnd(odd.length)];
      seen.push(id);
      const k = rnd(10);
      if (k < 5) events.push(ins({ id, v: `i${i}` } as never));
      else if (k < 7) events.push(upd({ id, v: 'x' } as never, { id, v: `u${i}` } as never));
      else if (k < 8 && seed % 2 === 1) events.push(upd({ id, v: 'x' } as never, { id: seen[rnd(seen.length)], v: `m${i}` } as never));
      else if (k < 9) events.push(upd({ id, v: 'x' } as never, { id } as never)); // a partial image
      else events.push(del({ id, v: 'x' } as never));
    }
    return events;
  }

  it('plans every batch as the Map did, over 800 random batches with runs, repeats, key changes and odd keys', () => {
    for (let seed = 1; seed <= 800; seed++) {
      const events = randomBatch(seed);
      expect(planBatch(events)).toEqual(planBatch(events, true));
    }
  });

  it('finds a key again inside a run, below it, and after many runs', () => {
    const runs = Array.from({ length: 40 }, (_, r) => Array.from({ length: 3 }, (_, i) => ins({ id: 1000 - r * 10 + i, v: 'a' } as never))).flat();
    const events = [...runs, upd({ id: 991, v: 'a' } as never, { id: 991, v: 'b' } as never), del({ id: 602, v: 'a' } as never)];
    const steps = planBatch(events);
    expect(steps).toEqual(planBatch(events, true));
    const upserts = steps.filter((st) => st.kind === 'upsert').flatMap((st) => (st as unknown as { rows: { id: number; v: string }[] }).rows);
    expect(upserts.filter((r) => r.id === 991)).toEqual([{ id: 991, v: 'b' }]);
    expect(upserts.some((r) => r.id === 602)).toBe(false);
  });

  it('needs no Map for interleaved runs with gaps (a lane of new rows and range updates), and makes one for a key seen', () => {
    const k = new KeyedRows();
    const hasIndex = () => (k as unknown as { index: unknown }).index !== null;
    const p = (n: number) => ({ del: false, row: { id: n } });
    for (let t = 0; t < 5; t++) {
      for (let id = 100_001 + t * 1000; id <= 101_000 + t * 1000; id += 1 + (id % 3)) k.setLast(id, p(id)); // inserts, every other key or so
      for (let id = 1 + t * 1000; id <= 1000 + t * 1000; id += 2) { expect(k.get(id)).toBeUndefined(); k.setLast(id, p(id)); } // updates
    }
    expect(hasIndex()).toBe(false);
    expect(k.get(2001)).toEqual(p(2001));
    expect(hasIndex()).toBe(true);
    k.setLast(2001, p(-1));
    const order: unknown[] = [];
    k.forEach((x) => order.push(x.row.id));
    expect(order.at(-1)).toBe(-1);
    expect(order.filter((x) => x === 2001)).toEqual([]);
  });
});
