/**
 * Tuples read as rows (the assembler binds a relation's column parsers, pg-tuple-reader.ts DirectRelation)
 * give exactly the changes that tuples kept as text and converted by the assembler give: over random
 * pgoutput messages of typed columns, with unchanged TOAST values, key-only images, deletes, a relation
 * sent again, and rows parsed before the assembler took their relation.
 */
import { describe, expect, it } from 'vitest';
import type { Pgoutput } from 'pg-logical-replication';
import type { CapturedTransaction, ChangeEvent, ColumnType } from '../../../../src/replication/change-event.ts';
import { decodePiece, encodePieceBytes, parsePiece } from '../../../../src/replication/feed/feed-codec.ts';
import { PIECE_V3_TAG } from '../../../../src/replication/feed/feed-codec-wire.ts';
import { silentLogger } from '../../../../src/replication/logger.ts';
import { RawTextPgoutputPlugin } from '../../../../src/replication/capture/pg-replication-stream.ts';
import { PgTransactionAssembler, type CatalogLookups } from '../../../../src/replication/capture/pg-transaction-assembler.ts';
import type { DirectRelation } from '../../../../src/replication/capture/pg-tuple-reader.ts';
import type { PgTypeInfo } from '../../../../src/replication/capture/pg-values.ts';
import { i32, relation, tupleData, type Val } from './pgoutput-bytes.ts';

const base = (oid: number, name: string, category = 'S'): PgTypeInfo => ({ oid, typmod: -1, formatted: name, typtype: 'b', baseName: name, baseTypmod: -1, category, enumLabels: null });
const TYPES = [base(23, 'int4', 'N'), base(25, 'text'), base(16, 'bool', 'B'), base(17, 'bytea', 'U'), base(1114, 'timestamp', 'D'), base(1184, 'timestamptz', 'D'),
  base(2950, 'uuid', 'U'), base(1700, 'numeric', 'N'), base(701, 'float8', 'N'), base(20, 'int8', 'N')];

const catalog: CatalogLookups = {
  async typeInfos(pairs) {
    const out = new Map<string, PgTypeInfo>();
    for (const p of pairs) { const t = TYPES.find((x) => x.oid === p.oid); if (t) out.set(`${p.oid}:${p.typmod}`, { ...t, typmod: p.typmod }); }
    return out;
  },
  async notNull() { return new Map([['id', true]]); },
  async key() { return ['id']; },
  async relationAttributes() { return { attnums: new Map<string, number>(), generated: [], filled: new Map<string, string>() }; },
  async fillGenerated() { /* none */ },
};

const COLS = ['id', 'n', 'flag', 'bin', 'at', 'atz', 'u', 'amount', 'f', 'big', 'constructor'];
const OIDS = [23, 25, 16, 17, 1114, 1184, 2950, 1700, 701, 20, 25];
const POOL: Val[][] = [
  ['1', '42', '-7', '2147483647'], ['', 'é€😀', '\t\n\\', 'x'.repeat(500)], ['t', 'f'], ['\\x00ff10', '\\x'],
  ['2024-01-01 00:00:00', '2024-01-01 00:00:00.5', '1999-12-31 23:59:59.123456'], ['2024-01-01 00:00:00+00', '2024-06-01 12:30:00.25+02'],
  ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'], ['0', '-12.50', '123456789012345678901234567890.1'],
  ['1.5', 'NaN', '-0', 'Infinity', '1e300'], ['9007199254740993', '-5', '0'], ['c', ''],
];

function messages(seed: number): Buffer[] {
  let s = seed;
  const rnd = (n: number) => { s = (s * 1103515245 + 12345) % 2147483648; return s % n; };
  const row = (): Val[] => COLS.map((_, i) => (i > 0 && rnd(6) === 0 ? null : POOL[i]![rnd(POOL[i]!.length)]!));
  const rel = (identity: string) => relation(16384, COLS, { oids: OIDS, name: 'items', identity });
  const out: Buffer[] = [Buffer.concat([Buffer.from('B'), Buffer.alloc(8, 0), Buffer.alloc(8, 0), i32(1)]), rel('f')];
  for (let k = 0; k < 200; k++) {
    const old = row();
    const next = row().map((v, i) => (i > 0 && rnd(5) === 0 ? 'TOAST' : v));
    const key: Val[] = [old[0]!, ...COLS.slice(1).map(() => null)];
    switch (rnd(7)) {
      case 0: out.push(Buffer.concat([Buffer.from('I'), i32(16384), Buffer.from('N'), tupleData(row())])); break;
      case 1: out.push(Buffer.concat([Buffer.from('U'), i32(16384), Buffer.from('O'), tupleData(old), Buffer.from('N'), tupleData(next)])); break;
      case 2: out.push(Buffer.concat([Buffer.from('U'), i32(16384), Buffer.from('K'), tupleData(key), Buffer.from('N'), tupleData(next)])); break;
      case 3: out.push(Buffer.concat([Buffer.from('U'), i32(16384), Buffer.from('N'), tupleData(next)])); break;
      case 4: out.push(Buffer.concat([Buffer.from('D'), i32(16384), Buffer.from(rnd(2) ? 'O' : 'K'), tupleData(rnd(2) ? old : key)])); break;
      case 5: out.push(rel(rnd(2) ? 'f' : 'd')); break;
      default: out.push(Buffer.concat([Buffer.from('I'), i32(16384), Buffer.from('N'), tupleData(row())]));
    }
  }
  out.push(Buffer.concat([Buffer.from('C'), Buffer.from([0]), Buffer.alloc(8, 0), Buffer.from([0, 0, 0, 0, 0, 0, 0, 9]), Buffer.alloc(8, 1)]));
  return out;
}

type Mode = 'direct' | 'text' | 'parsed-ahead';

/** The transactions of `msgs`: parsed one at a time as the assembler takes them, with binding undone ('text'), or all parsed first. */
async function capture(msgs: Buffer[], mode: Mode): Promise<{ txs: CapturedTransaction[]; direct: number }> {
  const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const a = new PgTransactionAssembler({ catalog, tables: { schemas: [] }, logger: silentLogger, baseline: new Map(), baselineExact: false });
  const txs: CapturedTransaction[] = [];
  let direct = 0;
  const take = async (m: Pgoutput.Message) => {
    if ((m as { rowsDirect?: boolean }).rowsDirect) direct++;
    const tx = await a.accept(m);
    if (tx) txs.push(tx);
    if (mode === 'text' && m.tag === 'relation') {
      (m as DirectRelation).rowsDirect = false;
      for (const c of m.columns) c.parser = (x) => x;
    }
  };
  if (mode === 'parsed-ahead') {
    const parsed = msgs.map((m) => plugin.parse(m));
    for (const m of parsed) await take(m);
  } else {
    for (const m of msgs) await take(plugin.parse(m));
  }
  return { txs, direct };
}

describe('PostgreSQL tuples read as rows', () => {
  it('give the same changes as tuples converted by the assembler, whatever the message mix', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const msgs = messages(seed);
      const direct = await capture(msgs, 'direct');
      const text = await capture(msgs, 'text');
      const ahead = await capture(msgs, 'parsed-ahead');
      expect(direct.direct, 'rows read directly').toBeGreaterThan(100);
      expect(text.direct).toBe(0);
      expect(ahead.direct).toBe(0);
      expect(direct.txs.some((t) => t.wire !== undefined)).toBe(true);
      expect(direct.txs.map(({ wire: _, ...t }) => t)).toEqual(text.txs);
      expect(ahead.txs).toEqual(text.txs);
      // Same keys present (an unchanged TOAST value left out, not undefined), same values, same types.
      const shape = (txs: CapturedTransaction[]) => JSON.stringify(txs.flatMap((t) => t.events.map((e) => [e.before, e.after, e.beforeKeyOnly ?? false])));
      expect(shape(direct.txs)).toBe(shape(text.txs));
      expect(direct.txs.flatMap((t) => t.events).some((e) => e.after && !('bin' in e.after))).toBe(true);
    }
  });

  it('keep their bytes for the feed, which makes the very same changes of them (binary pieces)', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const { txs } = await capture(messages(seed), 'direct');
      const sets = new Map<string, ColumnType[]>();
      const setId = (c: ColumnType[]) => { const id = `s${[...sets.values()].indexOf(c) + 1 || sets.size + 1}`; sets.set(id, c); return id; };
      let kept = 0;
      for (const tx of txs) {
        if (!tx.wire) continue;
        for (const w of tx.wire) if (w) kept += (w.bb ? 1 : 0) + (w.ab ? 1 : 0);
        // Whole, and from an offset (a piece appended after a crash starts inside its transaction).
        for (const from of [0, 7]) {
          const sink = { buf: Buffer.alloc(16), len: 0 };
          encodePieceBytes(sink, tx.events, from, tx.events.length, setId, tx.wire);
          expect(sink.buf[0]).toBe(PIECE_V3_TAG);
          const out: ChangeEvent[] = [];
          decodePiece(parsePiece(Buffer.from(sink.buf.subarray(0, sink.len))), sets, out);
          expect(out).toEqual(tx.events.slice(from));
          // Rows with the same keys in the same order (an unchanged TOAST value left out, not undefined).
          const rows = (evs: ChangeEvent[]) => JSON.stringify(evs.map((e) => [e.before, e.after]));
          expect(rows(out) === rows(tx.events.slice(from))).toBe(true);
        }
      }
      expect(kept, 'row images kept as bytes').toBeGreaterThan(50);
    }
  });

  it('stay direct when their relation is sent again unchanged and parsed ahead of the assembler; a changed one is not', async () => {
    const plugin = new RawTextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const a = new PgTransactionAssembler({ catalog, tables: { schemas: [] }, logger: silentLogger, baseline: new Map(), baselineExact: false });
    const rel = (identity: string) => relation(16384, COLS, { oids: OIDS, name: 'items', identity });
    const ins = (id: string) => Buffer.concat([Buffer.from('I'), i32(16384), Buffer.from('N'), tupleData(COLS.map((_, i) => (i === 0 ? id : null)))]);
    const begin = Buffer.concat([Buffer.from('B'), Buffer.alloc(8, 0), Buffer.alloc(8, 0), i32(1)]);
    // The assembler takes the first relation and a row: the relation is bound.
    for (const m of [begin, rel('f'), ins('1')]) await a.accept(plugin.parse(m));
    // The server sends it again (an invalidation): rows parsed before the assembler takes it stay direct, with bytes.
    const ahead = [rel('f'), ins('2'), rel('d'), ins('3')].map((m) => plugin.parse(m) as Pgoutput.Message & { rowsDirect?: boolean; wire?: unknown });
    expect(ahead[1]!.rowsDirect).toBe(true);
    expect(ahead[1]!.wire).toBeDefined();
    // A relation that changed (its replica identity here) waits for the assembler to describe it.
    expect(ahead[3]!.rowsDirect).toBeUndefined();
    for (const m of ahead) await a.accept(m);
    const tx = await a.accept(plugin.parse(Buffer.concat([Buffer.from('C'), Buffer.from([0]), Buffer.alloc(8, 0), Buffer.from([0, 0, 0, 0, 0, 0, 0, 9]), Buffer.alloc(8, 1)])));
    expect(tx!.events.filter((e) => e.op !== 'ddl').map((e) => e.after?.id)).toEqual([1, 2, 3]);
  });

  it('are plain objects: a column named constructor is data, inherited members stay inherited', async () => {
    const { txs } = await capture(messages(3), 'direct');
    const rows = txs.flatMap((t) => t.events.map((e) => e.after)).filter((r) => r !== null);
    for (const r of rows) {
      expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
      expect(typeof r.constructor === 'string' || r.constructor === null || !Object.hasOwn(r, 'constructor')).toBe(true);
    }
  });
});
