/**
 * The watermark method of incremental-snapshot.ts against an in-memory feed
 * and reader: keys the stream touched while a chunk was read are dropped from
 * it, a keyless copy is TRUNCATE + rows + the window's changes it does not
 * hold, later changes it holds are filtered, a chunk never lands between the
 * pieces of a transaction, and a read that missed the stream's last commits
 * is read again.
 */
import { describe, expect, it } from 'vitest';
import type { CapturedTransaction, ChangeEvent, Row } from '../../../src/replication/change-event.ts';
import { Operation } from '../../../src/replication/change-event.ts';
import type { ChangeFeed, FeedBounds } from '../../../src/replication/feed/change-feed.ts';
import { AppendLock, IncrementalSnapshotter } from '../../../src/replication/pipeline/incremental-snapshot.ts';
import { IncrementalStatus, newIncrementalRequest, type IncrementalRequest, type IncrementalRequestStore } from '../../../src/replication/snapshot/incremental-request.ts';
import type { SnapshotReader } from '../../../src/replication/snapshot/snapshot-reader.ts';
import { compareSequences, makeSequence } from '../../../src/replication/sequence.ts';
import type { TableInfo } from '../../../src/replication/table-info.ts';
import { silentLogger } from '../../../src/replication/logger.ts';
import { intCol, textCol } from './support-events.ts';

const KEYED: TableInfo = { schema: 's', table: 't', columns: [intCol('id'), textCol('v')], key: ['id'], estimatedRows: 4 };
const KEYLESS: TableInfo = { schema: 's', table: 'l', columns: [intCol('a'), textCol('v')], key: [], estimatedRows: 3 };

class MemFeed {
  events: ChangeEvent[] = [];
  open = false;
  readonly name = 'f';
  async append(tx: CapturedTransaction): Promise<number> {
    const last = this.events.at(-1)?.sequence ?? '0.0.0';
    const fresh = tx.events.filter((e) => compareSequences(e.sequence, last) > 0);
    this.events.push(...fresh);
    return fresh.length;
  }
  async bounds(): Promise<FeedBounds> { return { first: '0.0.0', last: this.events.at(-1)?.sequence ?? '0.0.0', openTransaction: this.open }; }
  async resumePosition() { return { kind: 'mysql' as const, file: 'binlog.000001', pos: 4 }; }
}

class MemStore {
  reqs = new Map<string, IncrementalRequest>();
  async list() { return [...this.reqs.values()].sort((a, b) => (a.id < b.id ? -1 : 1)); }
  async active(runId: number) { return (await this.list()).find((r) => (r.status === 'pending' || r.status === 'running') && (r.minRun ?? 0) <= runId); }
  async save(r: IncrementalRequest) { this.reqs.set(r.id, structuredClone(r)); }
}

/** A stream transaction at binlog offset `lo` (sequences 1.lo.i). */
function tx(lo: number, events: Partial<ChangeEvent>[], partial = false): CapturedTransaction {
  return {
    txid: String(lo), commitSequence: String(lo), commitTime: 0, resume: { kind: 'mysql', file: 'binlog.000001', pos: lo + 100 }, partial,
    events: events.map((e, i) => ({
      source: 'mysql', sequence: makeSequence(1, lo, i), txid: String(lo), commitSequence: String(lo), index: i, op: Operation.Insert,
      schema: 's', table: 't', key: ['id'], before: null, after: null, columns: KEYED.columns, commitTime: 0, ...e,
    })) as ChangeEvent[],
  };
}

function setup(table: TableInfo, rows: Row[], opts: { cover?: () => string; duringRead?: (s: Stream) => Promise<void>; tables?: () => TableInfo[]; rowsOf?: () => Row[] } = {}) {
  const feed = new MemFeed();
  const store = new MemStore();
  const lock = new AppendLock();
  let snap!: IncrementalSnapshotter;
  const stream: Stream = {
    async write(t: CapturedTransaction) {
      await lock.run(async () => { const kept = snap.filter(t); await feed.append(kept); snap.observe(kept); });
    },
  };
  let reads = 0;
  const reader: SnapshotReader = {
    listTables: async () => opts.tables?.() ?? [table],
    planChunks: async () => [{ index: 0 }],
    async *readChunk(_t, _c, _b, o) {
      reads++;
      if (opts.cover) o?.onCover?.(opts.cover());
      await opts.duringRead?.(stream);
      yield opts.rowsOf?.() ?? rows;
    },
    position: async () => ({ kind: 'mysql', file: 'binlog.000001', pos: 4 }),
    close: async () => undefined,
  };
  snap = new IncrementalSnapshotter({
    source: 'mysql', feed: feed as unknown as ChangeFeed, reader, store: store as unknown as IncrementalRequestStore, lock, logger: silentLogger,
    runId: 1, captured: { schemas: [] }, chunkRows: 100, fallbackResume: { kind: 'mysql', file: 'binlog.000001', pos: 4 }, pollMs: 5,
  });
  const runUntilDone = async () => {
    const ac = new AbortController();
    const running = snap.run(ac.signal);
    for (let i = 0; i < 400; i++) {
      const r = (await store.list())[0];
      if (r && (r.status === IncrementalStatus.Done || r.status === IncrementalStatus.Failed)) break;
      await new Promise((res) => setTimeout(res, 5));
    }
    ac.abort();
    await running;
    return (await store.list())[0]!;
  };
  const request = (where?: string) => store.save(newIncrementalRequest({ schemas: [{ schema: 's', tables: [table.table] }] }, where, 'snapshotTables', 1));
  return { feed, store, stream, snap, runUntilDone, request, reads: () => reads };
}
interface Stream { write(t: CapturedTransaction): Promise<void> }

describe('incremental snapshot (watermarks)', () => {
  it('drops from the chunk the keys the stream changed between the watermarks, and lands between two transactions', async () => {
    const rows = [1, 2, 3, 4].map((id) => ({ id, v: `old ${id}` }));
    const s = setup(KEYED, rows, {
      duringRead: async (st) => {
        await st.write(tx(200, [{ op: Operation.Delete, before: { id: 2, v: 'old 2' } }, { op: Operation.Update, before: { id: 3, v: 'old 3' }, after: { id: 3, v: 'new 3' } }]));
      },
    });
    await s.stream.write(tx(100, [{ after: { id: 9, v: 'x' } }]));
    await s.request();
    const req = await s.runUntilDone();
    expect(req.status).toBe('done');
    expect(req.rowsDone).toBe(2);
    const chunk = s.feed.events.filter((e) => e.txid === '0');
    expect(chunk.map((e) => e.after!.id)).toEqual([1, 4]);
    expect(chunk.every((e) => e.op === Operation.Insert)).toBe(true);
    // After the stream's last change, before the next transaction's.
    await s.stream.write(tx(300, [{ after: { id: 10, v: 'y' } }]));
    const seqs = s.feed.events.map((e) => e.sequence);
    expect([...seqs].sort(compareSequences)).toEqual(seqs);
    expect(s.feed.events.at(-1)!.after!.id).toBe(10);
  });

  it('applies `where` to the rows read', async () => {
    const s = setup(KEYED, [1, 2, 3, 4].map((id) => ({ id, v: 'v' })));
    await s.request('id >= 3');
    const req = await s.runUntilDone();
    expect(s.feed.events.map((e) => e.after!.id)).toEqual([3, 4]);
    expect(req.rowsDone).toBe(2);
  });

  it('copies a keyless table whole: TRUNCATE, rows, the window changes its snapshot misses; later changes it holds are filtered', async () => {
    const ledger = (lo: number, a: number): CapturedTransaction => tx(lo, [{ table: 'l', key: [], after: { a, v: 'w' }, columns: KEYLESS.columns }]);
    const s = setup(KEYLESS, [{ a: 1, v: 'w' }, { a: 2, v: 'w' }], {
      // The read holds transactions starting below offset 250.
      cover: () => `binlog ${makeSequence(1, 250, 0)}`,
      duringRead: async (st) => { await st.write(ledger(200, 2)); await st.write(ledger(300, 3)); },
    });
    await s.request();
    await s.runUntilDone();
    const chunk = s.feed.events.filter((e) => e.txid === '0');
    expect(chunk[0]!.op).toBe(Operation.Ddl);
    expect(chunk[0]!.ddl).toBe('TRUNCATE TABLE `s`.`l`');
    // Rows 1 and 2 from the copy (2 came from transaction 200, which it holds), then 3 again (it does not).
    expect(chunk.slice(1).map((e) => e.after!.a)).toEqual([1, 2, 3]);
    // A transaction the copy holds that the stream delivers only now is not appended again.
    const before = s.feed.events.length;
    await s.stream.write(ledger(240, 5));
    expect(s.feed.events.length).toBe(before);
    await s.stream.write(ledger(400, 6));
    expect(s.feed.events.length).toBe(before + 1);
  });

  it('never appends a chunk between the pieces of a large transaction', async () => {
    const s = setup(KEYED, [{ id: 1, v: 'v' }]);
    s.feed.open = true;
    await s.request();
    const done = s.runUntilDone();
    await new Promise((r) => setTimeout(r, 100));
    expect(s.feed.events.some((e) => e.txid === '0')).toBe(false);
    s.feed.open = false;
    expect((await done).status).toBe('done');
    expect(s.feed.events.filter((e) => e.txid === '0')).toHaveLength(1);
  });

  it('reads a chunk again, with the new columns, when the table changes shape while it is read', async () => {
    let shape: TableInfo = KEYED;
    let first = true;
    const s = setup(KEYED, [], {
      tables: () => [shape],
      rowsOf: () => (shape === KEYED ? [{ id: 1, v: 'v' }] : [{ id: 1, v: 'v', w: 7 }]),
      duringRead: async (st) => {
        if (!first) return;
        first = false;
        shape = { ...KEYED, columns: [...KEYED.columns, intCol('w')] };
        await st.write(tx(200, [{ op: Operation.Ddl, ddl: 'ALTER TABLE s.t ADD COLUMN w int' }]));
      },
    });
    await s.request();
    expect((await s.runUntilDone()).status).toBe('done');
    expect(s.reads()).toBe(2);
    const chunk = s.feed.events.filter((e) => e.txid === '0');
    expect(chunk.map((e) => e.after)).toEqual([{ id: 1, v: 'v', w: 7 }]);
    expect(chunk[0]!.columns.map((c) => c.name)).toEqual(['id', 'v', 'w']);
  });

  it('reads a chunk again when its snapshot misses a transaction the stream already appended', async () => {
    let n = 0;
    // The first read's snapshot is older than transaction 100, which the stream already carried.
    const s = setup(KEYED, [{ id: 1, v: 'v' }], { cover: () => `binlog ${makeSequence(1, n++ === 0 ? 50 : 150, 0)}` });
    await s.stream.write(tx(100, [{ after: { id: 1, v: 'v' } }]));
    await s.request();
    expect((await s.runUntilDone()).status).toBe('done');
    expect(s.reads()).toBe(2);
  });
});
