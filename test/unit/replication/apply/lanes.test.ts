/** ParallelWorkers lanes: per-row order kept, key moves split, DDL a barrier. */
import { describe, expect, it } from 'vitest';
import { Operation, type Value } from '../../../../src/replication/change-event.ts';
import { FatalError } from '../../../../src/replication/errors.ts';
import { cutAtDdl, laneOf, splitLanes } from '../../../../src/replication/apply/lanes.ts';
import { ddl, del, ins, upd } from '../support-events.ts';

describe('laneOf', () => {
  it('puts everything in lane 0 when there is one lane', () => {
    expect(laneOf(ins({ id: 1, v: 'a' }), 1)).toBe(0);
    expect(laneOf(ddl('ALTER TABLE t ADD c int'), 1)).toBe(0);
  });

  it('is stable: the same key always gets the same lane, whatever the operation', () => {
    const l = laneOf(ins({ id: 42, v: 'a' }), 8);
    expect(l).toBeGreaterThanOrEqual(0);
    expect(l).toBeLessThan(8);
    expect(laneOf(upd({ id: 42, v: 'a' }, { id: 42, v: 'b' }), 8)).toBe(l);
    expect(laneOf(del({ id: 42, v: 'b' }), 8)).toBe(l);
  });

  it('hashes 5 and "5" alike (JSON-safe key text)', () => {
    expect(laneOf(ins({ id: 5 }), 16)).toBe(laneOf(ins({ id: '5' }), 16));
  });

  it('spreads distinct keys over more than one lane', () => {
    const lanes = new Set(Array.from({ length: 64 }, (_, i) => laneOf(ins({ id: i }), 4)));
    expect(lanes.size).toBeGreaterThan(1);
  });

  it('keeps a keyless table, and DDL, in the one lane of its table', () => {
    const keyless = (id: number) => ins({ id, v: 'x' }, { key: [] });
    const l = laneOf(keyless(1), 8);
    for (let i = 2; i < 20; i++) expect(laneOf(keyless(i), 8)).toBe(l);
    expect(laneOf(ddl('ALTER TABLE s.t ADD c int'), 8)).toBe(l);
  });

  it('refuses a lane count that is not a positive integer', () => {
    expect(() => laneOf(ins({ id: 1 }), 0)).toThrow(FatalError);
    expect(() => laneOf(ins({ id: 1 }), 1.5)).toThrow(/lanes must be a positive integer/);
  });
});

describe('splitLanes', () => {
  it('keeps each row\'s changes in order in its lane and loses none', () => {
    const events = [ins({ id: 1, v: 'a' }), ins({ id: 2, v: 'a' }), upd({ id: 1, v: 'a' }, { id: 1, v: 'b' }), del({ id: 2, v: 'a' }), upd({ id: 1, v: 'b' }, { id: 1, v: 'c' })];
    const lanes = splitLanes(events, 4);
    expect(lanes).toHaveLength(4);
    expect(lanes.flat()).toHaveLength(events.length);
    const row1 = lanes[laneOf(events[0]!, 4)]!.filter((e) => (e.after ?? e.before)!.id === 1);
    expect(row1.map((e) => e.after?.v)).toEqual(['a', 'b', 'c']);
  });

  it('splits an update that moves a row to a key of another lane into a delete and an insert', () => {
    // find two keys in different lanes
    let other = 2;
    while (laneOf(ins({ id: other }), 4) === laneOf(ins({ id: 1 }), 4)) other++;
    const move = upd({ id: 1, v: 'a' }, { id: other, v: 'a' });
    const lanes = splitLanes([move], 4);
    const oldLane = lanes[laneOf(ins({ id: 1 }), 4)]!;
    const newLane = lanes[laneOf(ins({ id: other }), 4)]!;
    expect(oldLane).toEqual([{ ...move, op: Operation.Delete, after: null }]);
    expect(newLane).toEqual([{ ...move, op: Operation.Insert, before: null }]);
  });

  it('keeps a key-changing update whole when both keys share a lane', () => {
    let other = 2;
    while (laneOf(ins({ id: other }), 2) !== laneOf(ins({ id: 1 }), 2)) other++;
    const move = upd({ id: 1, v: 'a' }, { id: other, v: 'a' });
    expect(splitLanes([move], 2).flat()).toEqual([move]);
  });

  it('refuses DDL: a schema change must be cut out first', () => {
    expect(() => splitLanes([ins({ id: 1 }), ddl('ALTER TABLE t ADD c int')], 2)).toThrow(/cutAtDdl/);
  });
});

describe('cutAtDdl', () => {
  it('cuts an ordered batch into DDL-free runs and single-DDL runs, in order', () => {
    const a = ins({ id: 1 });
    const b = ins({ id: 2 });
    const d1 = ddl('ALTER TABLE t ADD c int');
    const d2 = ddl('ALTER TABLE t DROP c');
    const c = del({ id: 1 });
    expect(cutAtDdl([a, b, d1, d2, c])).toEqual([[a, b], [d1], [d2], [c]]);
    expect(cutAtDdl([d1])).toEqual([[d1]]);
    expect(cutAtDdl([])).toEqual([]);
  });
});

describe('lane assignment is stable across versions', () => {
  // The text-building form the lanes were defined with: a row must keep its lane when Tributary is upgraded mid-stream.
  const fnv = (s: string) => { let h = 0x811c9dc5; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; } return h >>> 0; };
  const keyText = (row: Record<string, unknown> | null, key: string[]) => key.map((k) => { const v = row?.[k]; return v === null || v === undefined ? '\u0000null' : String(v); }).join('\u0001');
  const reference = (e: ReturnType<typeof ins>, lanes: number) => {
    const table = `${e.schema}.${e.table}`;
    if (e.key.length === 0) return fnv(table) % lanes;
    return fnv(`${table}\u0002${keyText(e.op === Operation.Delete ? e.before : e.after, e.key)}`) % lanes;
  };

  it('laneOf equals the reference hash for every key shape', () => {
    const values: Value[] = [0, -0, 1, -1, 9, 10, -10, 42, 100, 2147483648, -2147483648, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1.5, -1e-7, 1e21,
      '', 'a', 'é', '\u0001', 'x'.repeat(300), null, true, '9007199254740993', '-0', 999999999999999, 1000000000000000, -1000000000000001, 123456789012345, 7e15, 0.1, NaN, 5e-324];
    for (const lanes of [2, 3, 4, 8, 16]) {
      for (const a of values) for (const b of values) {
        for (const e of [
          ins({ id: a, v: 'x' }), del({ id: a }), upd({ id: b }, { id: a }),
          ins({ id: a, k2: b, v: 1 }, { key: ['id', 'k2'] }), ins({ v: a }, { key: [] }), ins({ id: a }, { table: 'other' }),
          ins({ id: a }, { schema: 'other' }), ins({ id: b }, { schema: 'other', table: 'other' }),
        ]) expect(laneOf(e, lanes), `${String(a)} ${String(b)} ${lanes}`).toBe(reference(e, lanes));
      }
    }
  });

  it('hashes integers of every length and sign (without their text) as their text', () => {
    const ints = [0, -0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1)];
    for (let digits = 1; digits <= 16; digits++) for (let i = 0; i < 300; i++) {
      const n = Math.floor(Math.random() * 10 ** digits);
      ints.push(Math.min(n, 2 ** 53 - 1), -Math.min(n, 2 ** 53 - 1), 10 ** (digits - 1), 10 ** (digits - 1) - 1);
    }
    for (const n of ints) for (const e of [ins({ id: n }), ins({ id: 7, k2: n }, { key: ['id', 'k2'] })]) {
      expect(laneOf(e, 1 << 30), String(n)).toBe(reference(e, 1 << 30));
    }
  });
});
