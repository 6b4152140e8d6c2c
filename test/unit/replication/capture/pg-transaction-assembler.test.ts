/**
 * pgoutput messages -> CapturedTransactions: order, sequences, resume, key-only images,
 * scopes, the table filter, and schema changes turned into DDL events. The catalog is a
 * fixed set of type facts (CatalogLookups), as pg-catalog.ts would read them.
 */
import { describe, expect, it } from 'vitest';
import type { Pgoutput } from 'pg-logical-replication';
import { CAPTURE_PIECE_EVENTS, Operation } from '../../../../src/replication/change-event.ts';
import { silentLogger } from '../../../../src/replication/logger.ts';
import { sequenceFromLsn } from '../../../../src/replication/sequence.ts';
import type { PgTypeInfo } from '../../../../src/replication/capture/pg-values.ts';
import { PgTransactionAssembler, canonicalLsn, type AssemblerOptions, type CatalogLookups, type SchemaBaseline } from '../../../../src/replication/capture/pg-transaction-assembler.ts';

const INT4: PgTypeInfo = { oid: 23, typmod: -1, formatted: 'integer', typtype: 'b', baseName: 'int4', baseTypmod: -1, category: 'N', enumLabels: null };
const TEXT: PgTypeInfo = { oid: 25, typmod: -1, formatted: 'text', typtype: 'b', baseName: 'text', baseTypmod: -1, category: 'S', enumLabels: null };
const MOOD = (labels: string[]): PgTypeInfo => ({ oid: 90001, typmod: -1, formatted: 'mood', typtype: 'e', baseName: 'mood', baseTypmod: -1, category: 'E', enumLabels: labels });

/** A fixed catalog: type facts by oid, NOT NULL columns and key per relation. */
function catalog(types: PgTypeInfo[], keys: Record<number, string[]> = {}): CatalogLookups & { types: PgTypeInfo[] } {
  const c = {
    types,
    async typeInfos(pairs: { oid: number; typmod: number }[]) {
      const out = new Map<string, PgTypeInfo>();
      for (const p of pairs) { const t = c.types.find((x) => x.oid === p.oid); if (t) out.set(`${p.oid}:${p.typmod}`, { ...t, typmod: p.typmod }); }
      return out;
    },
    async notNull(relOid: number) { return new Map((keys[relOid] ?? []).map((k) => [k, true] as [string, boolean])); },
    async key(relOid: number) { return keys[relOid] ?? []; },
    async relationAttributes() { return { attnums: new Map<string, number>(), generated: [], filled: new Map<string, string>() }; },
    async fillGenerated() { /* no generated columns in these relations */ },
  };
  return c;
}

const column = (name: string, typeOid: number): Pgoutput.RelationColumn => ({ name, flags: 0, typeOid, typeMod: -1, typeSchema: null, typeName: null, parser: (x) => x });
function relation(oid: number, name: string, columns: Pgoutput.RelationColumn[], o: Partial<Pgoutput.MessageRelation> = {}): Pgoutput.MessageRelation {
  return { tag: 'relation', relationOid: oid, schema: 'public', name, replicaIdentity: 'full', columns, keyColumns: [], ...o };
}
const begin = (xid: number, lsn: string): Pgoutput.MessageBegin => ({ tag: 'begin', xid, commitLsn: lsn, commitTime: 1_700_000_000_000_000n });
const commit = (lsn: string, end: string): Pgoutput.MessageCommit => ({ tag: 'commit', flags: 0, commitLsn: lsn, commitEndLsn: end, commitTime: 1_700_000_000_000_000n });

const ITEMS = relation(16384, 'items', [column('id', 23), column('name', 25), column('_change_selector', 25)]);

/** Published when the stream started (a table missing here is one created since). */
const KNOWN: SchemaBaseline = new Map([
  [16384, { schema: 'public', table: 'items', types: new Map() }],
  [16400, { schema: 'public', table: 'audit', types: new Map() }],
  [16600, { schema: 'public', table: 'moods', types: new Map() }],
]);

function assembler(o: Partial<AssemblerOptions> = {}, cat: CatalogLookups = catalog([INT4, TEXT], { 16384: ['id'] })) {
  return new PgTransactionAssembler({ catalog: cat, tables: { schemas: [] }, logger: silentLogger, baseline: KNOWN, baselineExact: false, ...o });
}

async function feed(a: PgTransactionAssembler, msgs: Pgoutput.Message[]) {
  const out = [];
  for (const m of msgs) { const tx = await a.accept(m); if (tx) out.push(tx); }
  return out;
}

describe('PgTransactionAssembler', () => {
  it('assembles a transaction: events in order, sequences from the commit LSN, resume at the end LSN', async () => {
    const a = assembler();
    const [tx] = await feed(a, [
      begin(700, '0/16B3748'), ITEMS,
      { tag: 'insert', relation: ITEMS, new: { id: '1', name: 'a', _change_selector: 'tenant-1' } },
      { tag: 'update', relation: ITEMS, old: { id: '1', name: 'a', _change_selector: 'tenant-1' }, key: null, new: { id: '1', name: 'b', _change_selector: 'tenant-1' } },
      { tag: 'delete', relation: ITEMS, old: { id: '1', name: 'b', _change_selector: 'tenant-1' }, key: null },
      commit('0/16B3748', '0/16B3790'),
    ]);
    expect(tx).toMatchObject({ txid: '700', commitTime: 1_700_000_000_000, resume: { kind: 'postgres', lsn: '0/16B3790' } });
    expect(tx!.partial).toBeUndefined();
    expect(tx!.events.map((e) => e.op)).toEqual([Operation.Insert, Operation.Update, Operation.Delete]);
    expect(tx!.events.map((e) => e.sequence)).toEqual([0, 1, 2].map((i) => sequenceFromLsn('0/16B3748', i)));
    expect(tx!.events.map((e) => e.index)).toEqual([0, 1, 2]);
    const [ins, upd, del] = tx!.events;
    expect(ins).toMatchObject({ schema: 'public', table: 'items', key: ['id'], before: null, after: { id: 1, name: 'a', _change_selector: 'tenant-1' }, scope: 'tenant-1' });
    expect(upd).toMatchObject({ before: { id: 1, name: 'a' }, after: { id: 1, name: 'b' } });
    expect(del).toMatchObject({ before: { id: 1, name: 'b' }, after: null, scope: 'tenant-1' });
    expect(ins!.columns.map((c) => [c.name, c.kind])).toEqual([['id', 'int'], ['name', 'text'], ['_change_selector', 'text']]);
  });

  it('marks a key-only old image (no REPLICA IDENTITY FULL) and leaves the other columns out, not null', async () => {
    const rel = relation(16384, 'items', ITEMS.columns, { replicaIdentity: 'default', keyColumns: ['id'] });
    const [tx] = await feed(assembler(), [
      begin(1, '0/10'), rel,
      { tag: 'delete', relation: rel, old: null, key: { id: '5' } },
      { tag: 'update', relation: rel, old: null, key: null, new: { id: '6', name: 'x', _change_selector: null } },
      commit('0/10', '0/20'),
    ]);
    expect(tx!.events[0]).toMatchObject({ op: Operation.Delete, before: { id: 5 }, beforeKeyOnly: true });
    expect(tx!.events[0]!.before).not.toHaveProperty('name');
    // Key unchanged under a key-only identity: the key comes from the new row.
    expect(tx!.events[1]).toMatchObject({ op: Operation.Update, before: { id: 6 }, after: { id: 6, name: 'x', _change_selector: null }, beforeKeyOnly: true });
    expect(tx!.events[1]!.scope).toBeUndefined();
  });

  it('leaves out tables the job does not cover', async () => {
    const other = relation(16400, 'audit', [column('id', 23)]);
    const [tx] = await feed(assembler({ tables: { schemas: [{ schema: 'public', tables: ['items'] }] } }), [
      begin(2, '0/30'), ITEMS, other,
      { tag: 'insert', relation: other, new: { id: '1' } },
      { tag: 'insert', relation: ITEMS, new: { id: '2', name: 'n', _change_selector: null } },
      commit('0/30', '0/40'),
    ]);
    expect(tx!.events.map((e) => e.table)).toEqual(['items']);
    expect(tx!.events[0]!.index).toBe(0);
  });

  it('turns TRUNCATE into a DDL event of the table', async () => {
    const [tx] = await feed(assembler(), [begin(3, '0/50'), ITEMS, { tag: 'truncate', cascade: false, restartIdentity: false, relations: [ITEMS] }, commit('0/50', '0/60')]);
    expect(tx!.events).toHaveLength(1);
    expect(tx!.events[0]).toMatchObject({ op: Operation.Ddl, ddl: 'TRUNCATE "public"."items"' });
  });

  it('turns a relation that changed within the run into DDL (add, drop, rename of a column)', async () => {
    const a = assembler();
    await feed(a, [begin(4, '0/70'), ITEMS, commit('0/70', '0/80')]);
    const added = relation(16384, 'items', [...ITEMS.columns, column('qty', 23)]);
    const [t1] = await feed(a, [begin(5, '0/90'), added, commit('0/90', '0/A0')]);
    expect(t1!.events.map((e) => e.ddl)).toEqual(['ALTER TABLE "public"."items" ADD COLUMN "qty" integer']);
    const renamed = relation(16384, 'items', [column('id', 23), column('title', 25), column('_change_selector', 25), column('qty', 23)]);
    const [t2] = await feed(a, [begin(6, '0/B0'), renamed, commit('0/B0', '0/C0')]);
    expect(t2!.events.map((e) => e.ddl)).toEqual(['ALTER TABLE "public"."items" RENAME COLUMN "name" TO "title"']);
    const dropped = relation(16384, 'items', [column('id', 23), column('title', 25), column('_change_selector', 25)]);
    const [t3] = await feed(a, [begin(7, '0/D0'), dropped, commit('0/D0', '0/E0')]);
    expect(t3!.events.map((e) => e.ddl)).toEqual(['ALTER TABLE "public"."items" DROP COLUMN "qty"']);
  });

  it('tells a rename with a type change from a drop plus an add by attribute number, and refuses to guess without one', async () => {
    // The catalog as it is when each relation message is decoded: attribute numbers and fills by name.
    const attrs = { attnums: new Map<string, number>([['id', 1], ['name', 2], ['_change_selector', 3]]), filled: new Map<string, string>() };
    const cat = { ...catalog([INT4, TEXT], { 16384: ['id'] }), async relationAttributes() { return { attnums: new Map(attrs.attnums), generated: [], filled: new Map(attrs.filled) }; } };
    const a = assembler({}, cat);
    await feed(a, [begin(4, '0/70'), ITEMS, commit('0/70', '0/80')]);
    // name (attnum 2) renamed to title and retyped to integer, no row in between: one statement, rename then type.
    attrs.attnums = new Map([['id', 1], ['title', 2], ['_change_selector', 3]]);
    const retyped = relation(16384, 'items', [column('id', 23), column('title', 23), column('_change_selector', 25)]);
    const [t1] = await feed(a, [begin(5, '0/90'), retyped, commit('0/90', '0/A0')]);
    expect(t1!.events.map((e) => e.ddl)).toEqual(['ALTER TABLE "public"."items" RENAME COLUMN "name" TO "title", ALTER COLUMN "title" TYPE integer']);
    // _change_selector dropped and "tag" (same type, same place, a new attribute number) added: a drop and an add.
    attrs.attnums = new Map([['id', 1], ['title', 2], ['tag', 4]]);
    attrs.filled = new Map([['tag', "DEFAULT 'x'::text"]]);
    const swapped = relation(16384, 'items', [column('id', 23), column('title', 23), column('tag', 25)]);
    const [t2] = await feed(a, [begin(6, '0/B0'), swapped, commit('0/B0', '0/C0')]);
    expect(t2!.events.map((e) => e.ddl)).toEqual([`ALTER TABLE "public"."items" DROP COLUMN "_change_selector", ADD COLUMN "tag" text DEFAULT 'x'::text`]);
    // The catalog no longer knows the new name (renamed again since): same place, another type -> cannot tell.
    attrs.attnums = new Map([['id', 1], ['title', 2]]);
    attrs.filled = new Map();
    const unknown = relation(16384, 'items', [column('id', 23), column('title', 23), column('label', 23)]);
    const [t3] = await feed(a, [begin(7, '0/D0'), unknown, commit('0/D0', '0/E0')]);
    expect(t3!.events.map((e) => e.ddl)).toEqual(['ALTER TABLE "public"."items" REPLACE COLUMN "tag" text WITH "label" integer (a rename with a type change, or a drop and an add: cannot tell which)']);
  });

  it('places a column the catalog no longer named between its neighbours\' attribute numbers', async () => {
    // Decoding lags: when the first message is described, "name" (attnum 2) is already renamed to "title".
    const attrs = { attnums: new Map<string, number>([['id', 1], ['title', 2], ['_change_selector', 3]]) };
    const cat = { ...catalog([INT4, TEXT], { 16384: ['id'] }), async relationAttributes() { return { attnums: new Map(attrs.attnums), generated: [], filled: new Map<string, string>() }; } };
    const a = assembler({}, cat);
    await feed(a, [begin(4, '0/70'), ITEMS, commit('0/70', '0/80')]);
    const retyped = relation(16384, 'items', [column('id', 23), column('title', 23), column('_change_selector', 25)]);
    const [t1] = await feed(a, [begin(5, '0/90'), retyped, commit('0/90', '0/A0')]);
    expect(t1!.events.map((e) => e.ddl)).toEqual(['ALTER TABLE "public"."items" RENAME COLUMN "name" TO "title", ALTER COLUMN "title" TYPE integer']);
  });

  it('takes the first relation message of a run as the truth unless the baseline is exact', async () => {
    const baseline: SchemaBaseline = new Map([[16384, { schema: 'public', table: 'items', types: new Map([['id', 'integer'], ['name', 'text']]) }]]);
    const [loose] = await feed(assembler({ baseline, baselineExact: false }), [begin(8, '0/F0'), ITEMS, commit('0/F0', '0/100')]);
    expect(loose!.events).toEqual([]);
    const [exact] = await feed(assembler({ baseline, baselineExact: true }), [begin(8, '0/F0'), ITEMS, commit('0/F0', '0/100')]);
    expect(exact!.events.map((e) => e.ddl)).toEqual(['ALTER TABLE "public"."items" ADD COLUMN "_change_selector" text']);
  });

  it('creates a table first seen during the run (created under FOR ALL TABLES)', async () => {
    const fresh = relation(16500, 'fresh', [column('id', 23), column('note', 25)]);
    const [tx] = await feed(assembler({ baselineExact: true }, catalog([INT4, TEXT], { 16500: ['id'] })), [begin(9, '0/110'), fresh, commit('0/110', '0/120')]);
    expect(tx!.events.map((e) => e.ddl)).toEqual(['CREATE TABLE "public"."fresh" ("id" integer NOT NULL, "note" text, PRIMARY KEY ("id"))']);
  });

  it('puts ALTER TYPE ... ADD VALUE ahead of a row carrying an enum label added since', async () => {
    const cat = catalog([INT4, MOOD(['sad', 'ok'])], { 16600: ['id'] });
    const rel = relation(16600, 'moods', [column('id', 23), column('mood', 90001)]);
    const a = assembler({}, cat);
    await feed(a, [begin(10, '0/130'), rel, commit('0/130', '0/140')]);
    cat.types = [INT4, MOOD(['sad', 'ok', 'happy'])];
    const [tx] = await feed(a, [begin(11, '0/150'), { tag: 'insert', relation: rel, new: { id: '1', mood: 'happy' } }, commit('0/150', '0/160')]);
    expect(tx!.events.map((e) => e.op)).toEqual([Operation.Ddl, Operation.Insert]);
    expect(tx!.events[0]!.ddl).toBe(`ALTER TYPE mood ADD VALUE 'happy'`);
    expect(tx!.events[1]!.columns.find((c) => c.name === 'mood')!.values).toEqual(['sad', 'ok', 'happy']);
  });

  it('hands a large transaction over in pieces that carry on the indexes', async () => {
    const a = assembler();
    const msgs: Pgoutput.Message[] = [begin(12, '0/170'), ITEMS];
    for (let i = 0; i < CAPTURE_PIECE_EVENTS + 2; i++) msgs.push({ tag: 'insert', relation: ITEMS, new: { id: String(i), name: 'x', _change_selector: null } });
    msgs.push(commit('0/170', '0/180'));
    const txs = await feed(a, msgs);
    expect(txs).toHaveLength(2);
    expect(txs[0]!.partial).toBe(true);
    expect(txs[0]!.events).toHaveLength(CAPTURE_PIECE_EVENTS);
    expect(txs[1]!.partial).toBeUndefined();
    expect(txs[1]!.events.map((e) => e.index)).toEqual([CAPTURE_PIECE_EVENTS, CAPTURE_PIECE_EVENTS + 1]);
  });
});

describe('canonicalLsn', () => {
  it('drops leading zeros and upper-cases', () => {
    expect(canonicalLsn('00000016/b374d848')).toBe('16/B374D848');
    expect(canonicalLsn(null)).toBe('0/0');
  });
});
