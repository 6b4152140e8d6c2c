/**
 * hidden-slot.ts: a value kept on a plain object that no copy, reflection or
 * comparison sees, and that a copy of the object does not carry.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { hiddenSlot } from '../../../src/replication/hidden-slot.ts';

describe('hiddenSlot', () => {
  it('keeps a value on a plain object, invisible to every copy, listing and comparison', () => {
    const slot = hiddenSlot<{ bytes: string }>();
    const row: Record<string, unknown> = { id: 1, name: 'a', note: null };
    const kept = { bytes: 'xyz' };
    slot.set(row, kept);
    expect(slot.get(row)).toBe(kept);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.keys(row)).toEqual(['id', 'name', 'note']);
    expect(Reflect.ownKeys(row)).toEqual(['id', 'name', 'note']);
    expect(Object.getOwnPropertySymbols(row)).toEqual([]);
    expect(JSON.stringify(row)).toBe('{"id":1,"name":"a","note":null}');
    expect(row).toStrictEqual({ id: 1, name: 'a', note: null });
    expect(isDeepStrictEqual(row, { id: 1, name: 'a', note: null })).toBe(true);
    for (const copy of [{ ...row }, Object.assign({}, row), structuredClone(row)]) {
      expect(copy).toStrictEqual(row);
      expect(slot.get(copy)).toBeUndefined();
    }
  });

  it('a second set replaces the value; slots are independent; objects without it read undefined', () => {
    const a = hiddenSlot<number>();
    const b = hiddenSlot<number>();
    const row = { id: 1 };
    a.set(row, 1);
    a.set(row, 2);
    expect(a.get(row)).toBe(2);
    expect(b.get(row)).toBeUndefined();
    b.set(row, 3);
    expect([a.get(row), b.get(row)]).toEqual([2, 3]);
    expect(a.get({ id: 1 })).toBeUndefined();
    expect(a.get(Object.create(null) as object)).toBeUndefined();
  });
});
