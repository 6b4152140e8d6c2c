/** readTupleFast against pg-logical-replication's own readTuple, over the same pgoutput messages. */
import { describe, expect, it } from 'vitest';
import { PgoutputPlugin } from 'pg-logical-replication';
import { RawTextPgoutputPlugin } from '../../../../src/replication/capture/pg-replication-stream.ts';
import { useFastTuples } from '../../../../src/replication/capture/pg-tuple-reader.ts';
import { i32, relation, tupleData, type Val } from './pgoutput-bytes.ts';

function parsers() {
  const slow = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const fast = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  useFastTuples((fast as unknown as { parser: unknown }).parser);
  return { slow, fast };
}

describe('pgoutput tuples read straight from the buffer', () => {
  it('equal the library reader for inserts, updates (old, key, unchanged TOAST) and deletes', () => {
    const { slow, fast } = parsers();
    const cols = ['id', 'name', '__proto__', 'constructor', 'txt', 'é'];
    const rel = relation(7, cols);
    expect(fast.parse(rel)).toEqual(slow.parse(rel));
    let seed = 7;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const pool = ['', 'a', 'é€😀', 'x'.repeat(3000), '\t\n\\', '0', '-12.5', 'null', '\u0000x', 'ascii only text'];
    for (let k = 0; k < 300; k++) {
      const row = (): Val[] => cols.map(() => (rnd(5) === 0 ? null : pool[rnd(pool.length)]!));
      const old = row();
      const next: Val[] = row().map((v) => (rnd(6) === 0 ? 'TOAST' : v));
      const msgs = [
        Buffer.concat([Buffer.from('I'), i32(7), Buffer.from('N'), tupleData(row())]),
        Buffer.concat([Buffer.from('U'), i32(7), Buffer.from('O'), tupleData(old), Buffer.from('N'), tupleData(next)]),
        Buffer.concat([Buffer.from('U'), i32(7), Buffer.from('K'), tupleData([old[0]!, ...cols.slice(1).map(() => null)]), Buffer.from('N'), tupleData(row())]),
        Buffer.concat([Buffer.from('D'), i32(7), Buffer.from('O'), tupleData(old)]),
      ];
      for (const m of msgs) expect(fast.parse(m)).toEqual(slow.parse(m));
    }
  });

  it("shares an update's unchanged values between its old and new tuple, and decodes the changed ones", () => {
    const { slow, fast } = parsers();
    const cols = ['id', 'a', 'b', 'long'];
    const rel = relation(6, cols);
    slow.parse(rel); fast.parse(rel);
    const long = 'y'.repeat(200);
    const old = ['1', 'same', 'before', long];
    const next = ['1', 'same', 'after!', long.slice(0, 199) + 'z'];
    const m = Buffer.concat([Buffer.from('U'), i32(6), Buffer.from('O'), tupleData(old), Buffer.from('N'), tupleData(next)]);
    const got = fast.parse(m) as { old: Record<string, unknown>; new: Record<string, unknown> };
    expect(got).toEqual(slow.parse(m));
    expect(got.new).toEqual({ id: '1', a: 'same', b: 'after!', long: long.slice(0, 199) + 'z' });
    // A tuple read after another message's does not take that message's values.
    const ins = Buffer.concat([Buffer.from('I'), i32(6), Buffer.from('N'), tupleData(['2', 'same', 'x', long])]);
    expect((fast.parse(ins) as { new: Record<string, unknown> }).new).toEqual({ id: '2', a: 'same', b: 'x', long });
  });

  it('a tuple inherits nothing: a name it lacks reads undefined, __proto__ and constructor are columns like any other', () => {
    const { fast } = parsers();
    fast.parse(relation(8, ['__proto__', 'constructor', 'v']));
    const t = (fast.parse(Buffer.concat([Buffer.from('I'), i32(8), Buffer.from('N'), tupleData(['p', 'c', null])])) as { new: Record<string, unknown> }).new;
    expect(Object.keys(t)).toEqual(['__proto__', 'constructor', 'v']);
    expect([t.__proto__, t.constructor, t.v]).toEqual(['p', 'c', null]);
    for (const name of ['toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf']) expect(t[name], name).toBeUndefined();
  });

  it('keeps a leading byte-order mark (the library drops it) and fails on a truncated message as the library does', () => {
    const { slow, fast } = parsers();
    const rel = relation(9, ['id', 'v']);
    slow.parse(rel); fast.parse(rel);
    const bom = Buffer.concat([Buffer.from('I'), i32(9), Buffer.from('N'), tupleData(['1', '\ufeffhello'])]);
    expect((fast.parse(bom) as { new: Record<string, unknown> }).new.v).toBe('\ufeffhello');
    expect((slow.parse(bom) as { new: Record<string, unknown> }).new.v).toBe('hello');
    const whole = Buffer.concat([Buffer.from('I'), i32(9), Buffer.from('N'), tupleData(['1', 'abcdef'])]);
    for (let cut = 6; cut < whole.length; cut++) {
      const part = whole.subarray(0, cut);
      expect(() => fast.parse(part), String(cut)).toThrowError(/unexpected end of message/);
      expect(() => slow.parse(part), String(cut)).toThrowError(/unexpected end of message/);
    }
  });
});

describe('RawTextPgoutputPlugin.parseAt: a message decoded in place inside its XLogData chunk', () => {
  const xlog = (m: Buffer) => Buffer.concat([Buffer.from('w'), Buffer.alloc(24, 0x5a), m]);
  const begin = Buffer.concat([Buffer.from('B'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), Buffer.alloc(8, 1), i32(77)]);
  const commit = Buffer.concat([Buffer.from('C'), Buffer.from([0]), Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), Buffer.from([0, 0, 0, 1, 0, 0, 0, 9]), Buffer.alloc(8, 1)]);

  it('equals the library parse of the payload, columns kept as text, for every message kind the capture sees', () => {
    const slow = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const fast = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const rel = relation(9, ['id', 'n', 'at']);
    const relSlow = slow.parse(rel) as { columns: { parser: unknown }[] };
    const relFast = fast.parseAt(xlog(rel), 25) as { columns: { parser: (x: unknown) => unknown }[] };
    expect({ ...relFast, columns: relFast.columns.map((c) => ({ ...c, parser: null })) }).toEqual({ ...relSlow, columns: relSlow.columns.map((c) => ({ ...c, parser: null })) });
    // int4 and timestamp columns come through as the server's text, not pg's parsed values.
    for (const c of relFast.columns) expect(c.parser('0012')).toBe('0012');
    for (const m of [
      begin, commit,
      Buffer.concat([Buffer.from('I'), i32(9), Buffer.from('N'), tupleData(['1', 'é€😀', null])]),
      Buffer.concat([Buffer.from('U'), i32(9), Buffer.from('O'), tupleData(['1', 'a', null]), Buffer.from('N'), tupleData(['1', 'b', 'TOAST'])]),
      Buffer.concat([Buffer.from('D'), i32(9), Buffer.from('K'), tupleData(['1', null, null])]),
      // Every sub-message of the row messages the capture reads itself (useFullRowMessages).
      Buffer.concat([Buffer.from('U'), i32(9), Buffer.from('K'), tupleData(['1', null, null]), Buffer.from('N'), tupleData(['2', 'c', null])]),
      Buffer.concat([Buffer.from('U'), i32(9), Buffer.from('N'), tupleData(['3', null, 'd'])]),
      Buffer.concat([Buffer.from('D'), i32(9), Buffer.from('O'), tupleData(['3', null, 'd'])]),
    ]) {
      // The relation a row message refers to differs in its columns' parsers only (compared above).
      const bare = (x: object) => ({ ...x, relation: (x as { relation?: { relationOid: number } }).relation?.relationOid });
      const want = bare(slow.parse(m));
      expect(bare(fast.parseAt(xlog(m), 25))).toEqual(want);
      // The same as parse() of the bare payload.
      expect(bare(fast.parse(m))).toEqual(want);
    }
  });

  it('refuses an unknown tag and a truncated tuple with an error (the stream fails, the process does not)', () => {
    const fast = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    fast.parseAt(xlog(relation(10, ['id'])), 25);
    expect(() => fast.parseAt(xlog(Buffer.from('Z')), 25)).toThrow(/unknown pgoutput message Z/);
    const insert = Buffer.concat([Buffer.from('I'), i32(10), Buffer.from('N'), tupleData(['12345'])]);
    expect(() => fast.parseAt(xlog(insert).subarray(0, 25 + insert.length - 2), 25)).toThrow(/unexpected end of message/);
    // Inside a chunk that goes on (copy-framing.ts), the message's own end bounds the tuple, not the chunk's.
    const inChunk = Buffer.concat([xlog(insert), Buffer.alloc(64, 0x74)]);
    expect(() => fast.parseAt(inChunk, 25, 25 + insert.length - 2)).toThrow(/unexpected end of message/);
    expect((fast.parseAt(inChunk, 25, 25 + insert.length) as { new: unknown }).new).toEqual({ id: '12345' });
    // A row message cut inside its relation id or before its sub-message, and an unknown sub-message.
    for (const cut of [3, 5]) expect(() => fast.parseAt(inChunk, 25, 25 + cut)).toThrow(/unexpected end of message/);
    const bad = Buffer.concat([Buffer.from('U'), i32(10), Buffer.from('X'), tupleData(['1'])]);
    expect(() => fast.parseAt(xlog(bad), 25)).toThrow(/unknown submessage key X/);
    expect(() => fast.parseAt(xlog(Buffer.concat([Buffer.from('D'), i32(11), Buffer.from('O')])), 25)).toThrow(/missing relation/);
    // The reader keeps no chunk once its message is parsed.
    expect((fast as unknown as { reader: { _b: Buffer } }).reader._b.length).toBe(0);
  });
});
