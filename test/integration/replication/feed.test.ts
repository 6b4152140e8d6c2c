import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedis } from '../../../src/devtools/private-servers.ts';
import { Operation, type CapturedTransaction, type ChangeEvent } from '../../../src/replication/change-event.ts';
import { SnapshotTooOldError } from '../../../src/replication/feed/change-feed.ts';
import { FeedAppendError, FeedParameterError } from '../../../src/replication/feed/feed-errors.ts';
import { listFeeds, openFeed } from '../../../src/replication/feed/feed-registry.ts';
import { RedisChangeFeed } from '../../../src/replication/feed/redis-change-feed.ts';
import { matchesScopes, matchesTables, validateScope, validateScopes } from '../../../src/replication/feed/scope-filter.ts';
import { filterBySnapshot, isVisibleInSnapshot, parseSnapshot } from '../../../src/replication/feed/snapshot-filter.ts';
import { makeSequence, toStreamId } from '../../../src/replication/sequence.ts';
import { ColumnSetCodec } from '../../../src/replication/feed/column-sets.ts';

let redis: Redis;
const feeds: RedisChangeFeed[] = [];
const prefix = `t${randomUUID().slice(0, 8)}`;

function newFeed(opts: { now?: () => number; trimBatch?: number } = {}): RedisChangeFeed {
  const feed = new RedisChangeFeed({ redis, name: `feed-${randomUUID()}`, prefix, ...opts });
  feeds.push(feed);
  return feed;
}

/** Transaction `n` (commit LSN 0/n*0x100) with `count` insert events. */
function tx(n: number, count: number, opts: { commitTime?: number; scope?: string; source?: 'postgres' | 'mysql'; txid?: string } = {}): CapturedTransaction {
  const commitTime = opts.commitTime ?? 1_700_000_000_000 + n;
  const txid = opts.txid ?? String(1000 + n);
  const events: ChangeEvent[] = Array.from({ length: count }, (_, i) => ({
    source: opts.source ?? 'postgres',
    sequence: makeSequence(0, n * 0x100, i),
    txid,
    commitSequence: String(n * 0x100),
    index: i,
    op: Operation.Insert,
    schema: 'public',
    table: 'items',
    key: ['id'],
    before: null,
    after: { id: n * 1000 + i, name: `row ${n}/${i}` },
    columns: [{ name: 'id', kind: 'int', sourceType: 'integer' }, { name: 'name', kind: 'text', sourceType: 'text' }],
    commitTime,
    ...(opts.scope ? { scope: opts.scope } : {}),
  }));
  return { txid, commitSequence: String(n * 0x100), commitTime, resume: { kind: 'postgres', lsn: `0/${(n * 0x100 + 0x80).toString(16).toUpperCase()}` }, events };
}

const seqs = (events: ChangeEvent[]): string[] => events.map((e) => e.sequence);

beforeAll(() => { redis = new Redis(inject('redisUrl')); });
afterAll(async () => {
  for (const f of feeds) { await f.close(); await f.destroy().catch(() => undefined); }
  redis.disconnect();
});

describe('append and read', () => {
  it('keeps a commit estimate beside the payload (field r): read events carry it for lag, a re-append changes nothing', async () => {
    const feed = newFeed();
    const a = { ...tx(1, 3, { source: 'mysql', commitTime: 1_700_000_000_000 }), commitEstimate: 1_700_000_000_437 };
    const b = tx(2, 2, { source: 'mysql', commitTime: 1_700_000_001_000 });
    await feed.appendMany([a, b]);
    await feed.append({ ...tx(3, 1, { source: 'mysql' }), commitEstimate: 1_700_000_002_010 });
    const before = await redis.xrange(feed.keys.stream, '-', '+');
    // Read again after a restart: same payload, a later receipt (another estimate): skipped, nothing rewritten.
    expect(await feed.append({ ...a, commitEstimate: 1_700_000_000_999 })).toBe(0);
    expect(await redis.xrange(feed.keys.stream, '-', '+')).toEqual(before);
    const fields = before.map(([, f]) => Object.fromEntries(f.reduce<string[][]>((o, v, i) => (i % 2 ? o : [...o, [v, f[i + 1]!]]), [])));
    expect(fields.map((f) => f.r)).toEqual(['1700000000437', undefined, '1700000002010']);
    const { lagClockOf, meanLagClock } = await import('../../../src/replication/commit-clock.ts');
    const events = await feed.read(null, 100);
    // Marked on the first and last change of each piece (the middle one falls back to commitTime); the batch mean weighs whole transactions.
    expect(events.map(lagClockOf)).toEqual([1_700_000_000_437, 1_700_000_000_000, 1_700_000_000_437, 1_700_000_001_000, 1_700_000_001_000, 1_700_000_002_010]);
    expect(meanLagClock(events)).toBeCloseTo((3 * 1_700_000_000_437 + 2 * 1_700_000_001_000 + 1_700_000_002_010) / 6, 3);
    expect(events.map((e) => e.commitTime)).toEqual([...Array(3).fill(1_700_000_000_000), 1_700_000_001_000, 1_700_000_001_000, 1_700_000_000_003]);
    // From the middle of a piece: the rest of it still carries the estimate.
    expect((await feed.read(events[0]!.sequence, 100)).slice(0, 2).map(lagClockOf)).toEqual([1_700_000_000_437, 1_700_000_000_437]);
    expect(meanLagClock((await feed.read(events[0]!.sequence, 100)).slice(0, 2))).toBe(1_700_000_000_437);
  });

  it('keeps commit order across many transactions and reads with exclusive since and limit', async () => {
    const feed = newFeed();
    const all: string[] = [];
    for (let n = 1; n <= 40; n++) {
      const t = tx(n, (n % 3) + 1);
      expect(await feed.append(t)).toBe(t.events.length);
      all.push(...seqs(t.events));
    }
    // hex digits of different lengths sort correctly: 0.f00 < 0.1000
    expect(all).toContain('0.f00.0');
    expect(all).toContain('0.1000.0');
    expect(seqs(await feed.read(null, 100_000))).toEqual(all);
    expect(await feed.length()).toBe(all.length);
    expect(seqs(await feed.read(null, 5))).toEqual(all.slice(0, 5));
    expect(seqs(await feed.read(all[4]!, 3))).toEqual(all.slice(5, 8));
    expect(seqs(await feed.read('0.0.0', 2))).toEqual(all.slice(0, 2));
    expect(await feed.read(all.at(-1)!, 10)).toEqual([]);
    // a since between two changes (not itself a change) is fine
    expect(seqs(await feed.read('0.150.0', 1))).toEqual(['0.200.0']);
    expect(await feed.bounds()).toEqual({ first: all[0], last: all.at(-1) });
    expect(await feed.resumePosition()).toEqual({ kind: 'postgres', lsn: '0/2880' });
    const [first] = await feed.read(null, 1);
    expect(first).toEqual(tx(1, 2).events[0]); // round-trips unchanged
  });

  it('is idempotent: the same transaction twice, and a partial one re-appended whole', async () => {
    const feed = newFeed();
    expect(await feed.append(tx(1, 3))).toBe(3);
    expect(await feed.append(tx(1, 3))).toBe(0);
    const whole = tx(2, 5);
    expect(await feed.append({ ...whole, events: whole.events.slice(0, 2) })).toBe(2);
    expect(await feed.append(whole)).toBe(3);
    expect(await feed.append(tx(3, 1))).toBe(1);
    // an old transaction re-appended after newer ones adds nothing and keeps the newest resume position
    expect(await feed.append(tx(2, 5))).toBe(0);
    expect(await feed.resumePosition()).toEqual(tx(3, 1).resume);
    expect(seqs(await feed.read(null, 100))).toEqual([...seqs(tx(1, 3).events), ...seqs(whole.events), ...seqs(tx(3, 1).events)]);
  });

  it('takes a large transaction in pieces: partial pieces never move the resume position, a crash between pieces re-appends without duplicates', async () => {
    const feed = newFeed();
    expect(await feed.append(tx(1, 2))).toBe(2);
    const big = tx(2, 12_345);
    const piece = (from: number, to: number, partial: boolean): CapturedTransaction => ({ ...big, events: big.events.slice(from, to), ...(partial ? { partial: true, resume: tx(1, 2).resume } : {}) });
    // Two pieces arrive, then the capture "crashes": the resume position is still the one before the transaction.
    expect(await feed.append(piece(0, 5000, true))).toBe(5000);
    expect(await feed.append(piece(5000, 10_000, true))).toBe(5000);
    expect(await feed.resumePosition()).toEqual(tx(1, 2).resume);
    // Incremental snapshots must not append between these pieces and the rest.
    expect((await feed.bounds()).openTransaction).toBe(true);
    // The restarted capture reads the transaction again from its start: the pieces already there add nothing.
    expect(await feed.append(piece(0, 5000, true))).toBe(0);
    expect(await feed.append(piece(5000, 10_000, true))).toBe(0);
    expect(await feed.append(piece(10_000, 12_345, false))).toBe(2345);
    expect(await feed.resumePosition()).toEqual(big.resume);
    expect((await feed.bounds()).openTransaction).toBeUndefined();
    expect(await feed.length()).toBe(2 + 12_345);
    // One append of a whole large transaction goes to Redis in bounded pieces (it used to overflow the JS stack at ~50k).
    const huge = tx(3, 120_000);
    expect(await feed.append(huge)).toBe(120_000);
    expect(await feed.resumePosition()).toEqual(huge.resume);
    const tail = await feed.read(big.events.at(-1)!.sequence, 3);
    expect(seqs(tail)).toEqual(seqs(huge.events.slice(0, 3)));
  });

  it('countInto: the counter goes up by one per whole transaction added, with the append (not for what the feed held, nor for partial pieces)', async () => {
    const feed = newFeed();
    const counter = `${prefix}:job:{${randomUUID()}}:inflight`;
    const count = async () => Number(await redis.get(counter) ?? 0);
    const o = { countInto: counter };
    expect(await feed.append(tx(1, 2), o)).toBe(2);
    expect(await count()).toBe(1);
    expect(await feed.append(tx(1, 2), o)).toBe(0);
    expect(await count()).toBe(1);
    // Several small transactions in one script call; the first is held already.
    expect(await feed.appendMany([tx(1, 2), tx(2, 1), tx(3, 3)], o)).toBe(4);
    expect(await count()).toBe(3);
    // A large transaction in pieces counts once, with its last piece; a partial piece never.
    const big = tx(4, 2500);
    expect(await feed.append({ ...big, events: big.events.slice(0, 1200), partial: true, resume: tx(3, 3).resume }, o)).toBe(1200);
    expect(await count()).toBe(3);
    expect(await feed.append(big, o)).toBe(1300);
    expect(await count()).toBe(4);
    // A transaction without events adds nothing and counts nothing; without countInto nothing is counted.
    expect(await feed.append({ ...tx(5, 0) }, o)).toBe(0);
    expect(await feed.append(tx(6, 1))).toBe(1);
    expect(await count()).toBe(4);
  });

  it('stores each column set once and restores it per event, across schema changes', async () => {
    const feed = newFeed();
    const t1 = tx(1, 3);
    const t2 = tx(2, 2);
    for (const e of t2.events) e.columns = [...e.columns, { name: 'note', kind: 'text', sourceType: 'text', nullable: true }];
    await feed.append(t1);
    await feed.append(t2);
    expect(await redis.hlen(feed.keys.columns)).toBe(2);
    const [entry] = await redis.xrange(feed.keys.stream, '-', '+', 'COUNT', 1);
    // One entry per append piece (feed-codec.ts), its id the piece's last change; columns only in the hash.
    expect(entry![0]).toBe(toStreamId(t1.events[2]!.sequence));
    expect(entry![1]).toEqual(['b', expect.not.stringContaining('sourceType'), 't', String(t1.commitTime), 'n', '3', 'f', toStreamId(t1.events[0]!.sequence)]);
    // a fresh instance (empty cache) reads the same
    const fresh = new RedisChangeFeed({ redis, name: feed.name, prefix });
    expect(await fresh.read(null, 10)).toEqual([...t1.events, ...t2.events]);
    expect(await feed.read(null, 10)).toEqual([...t1.events, ...t2.events]);
    await feed.destroy();
    expect(await redis.exists(feed.keys.stream, feed.keys.meta, feed.keys.columns)).toBe(0);
  });

  it('reads a feed written one entry per change (before pieces) and appends pieces after it', async () => {
    const feed = newFeed();
    const old = tx(1, 3);
    const codec = new ColumnSetCodec(feed.keys.columns);
    // The layout of earlier versions: field e = the event without columns, t = commit time, c = column-set id.
    for (const e of old.events) {
      const cs = codec.encode(e.columns);
      await redis.hsetnx(feed.keys.columns, cs.id, cs.json);
      const { columns: _c, ...rest } = e;
      await redis.xadd(feed.keys.stream, toStreamId(e.sequence), 'e', JSON.stringify(rest), 't', e.commitTime, 'c', cs.id);
    }
    await redis.hset(feed.keys.meta, 'lastId', toStreamId(old.events[2]!.sequence));
    expect(await feed.length()).toBe(3);
    expect(await feed.append(tx(1, 3))).toBe(0);
    expect(await feed.append(tx(2, 2))).toBe(2);
    expect(await feed.length()).toBe(5);
    expect(await feed.read(old.events[0]!.sequence, 10)).toEqual([...old.events.slice(1), ...tx(2, 2).events]);
    expect(await feed.trim({ maxChanges: 2 })).toBe(3);
    expect(await feed.read(null, 10)).toEqual(tx(2, 2).events);
  });

  it('stores the resume position of transactions without events', async () => {
    const feed = newFeed();
    expect(await feed.resumePosition()).toBeNull();
    expect(await feed.bounds()).toEqual({ first: '0.0.0', last: '0.0.0' });
    expect(await feed.append(tx(7, 0))).toBe(0);
    expect(await feed.resumePosition()).toEqual(tx(7, 0).resume);
    expect(await feed.length()).toBe(0);
  });

  it('refuses a transaction out of order without writing anything, and bad parameters', async () => {
    const feed = newFeed();
    const t = tx(1, 3);
    await expect(feed.append({ ...t, events: [t.events[1]!, t.events[0]!] })).rejects.toBeInstanceOf(FeedAppendError);
    expect(await feed.length()).toBe(0);
    await expect(feed.read('zz', 10)).rejects.toMatchObject({ code: 'PARAMETER_INVALID' });
    await expect(feed.read(null, 0)).rejects.toBeInstanceOf(FeedParameterError);
    await expect(feed.trim({ maxChanges: -1 })).rejects.toBeInstanceOf(FeedParameterError);
  });
});

describe('retention', () => {
  it('trims by count exactly and answers SNAPSHOT_TOO_OLD only below the last trimmed change', async () => {
    const feed = newFeed({ trimBatch: 3 }); // several script calls per trim
    for (let n = 1; n <= 10; n++) await feed.append(tx(n, 2));
    const all = seqs(await feed.read(null, 100));
    expect(await feed.trim({ maxChanges: 12 })).toBe(8);
    expect(await feed.length()).toBe(12);
    expect(await feed.bounds()).toEqual({ first: all[8], last: all[19] });
    const trimmedThrough = all[7]!;
    await expect(feed.read(all[6]!, 10)).rejects.toBeInstanceOf(SnapshotTooOldError);
    await expect(feed.read('0.0.0', 10)).rejects.toMatchObject({ code: 'SNAPSHOT_TOO_OLD', first: all[8] });
    expect(seqs(await feed.read(trimmedThrough, 2))).toEqual(all.slice(8, 10));
    expect(seqs(await feed.read(null, 1))).toEqual([all[8]]);
    expect(await feed.trim({ maxChanges: 12 })).toBe(0);
  });

  it('never trims past keepAfter (what a job\'s apply has not read yet)', async () => {
    const feed = newFeed({ trimBatch: 4 });
    for (let n = 1; n <= 10; n++) await feed.append(tx(n, 2));
    const all = seqs(await feed.read(null, 100));
    // Count says keep 2, but only changes up to the 6th may go.
    expect(await feed.trim({ maxChanges: 2, keepAfter: all[5]! })).toBe(6);
    expect(seqs(await feed.read(all[5]!, 100))).toEqual(all.slice(6));
    // Nothing applied yet: nothing may go, by count or by age.
    const fresh = newFeed();
    for (let n = 1; n <= 3; n++) await fresh.append(tx(n, 2));
    expect(await fresh.trim({ maxChanges: 0, maxAgeMs: 0, keepAfter: '0.0.0' })).toBe(0);
    expect(await fresh.length()).toBe(6);
    // Across id widths: a later sequence with a longer stream id still compares as a number.
    expect(await feed.trim({ maxChanges: 0, keepAfter: makeSequence(1, 0, 0) })).toBe(14);
  });

  it('trims by commit age, from the oldest, and keeps a sentinel when everything is gone', async () => {
    let now = 1_700_000_100_000;
    const feed = newFeed({ now: () => now });
    for (let n = 1; n <= 6; n++) await feed.append(tx(n, 2, { commitTime: now - (7 - n) * 10_000 }));
    const all = seqs(await feed.read(null, 100));
    // commit ages 60s,50s,...,10s: keep those at most 35s old
    expect(await feed.trim({ maxAgeMs: 35_000 })).toBe(6);
    expect((await feed.bounds()).first).toBe(all[6]);
    await expect(feed.read(all[4]!, 10)).rejects.toBeInstanceOf(SnapshotTooOldError);
    expect(seqs(await feed.read(all[5]!, 100))).toEqual(all.slice(6));
    now += 60_000;
    expect(await feed.trim({ maxAgeMs: 35_000 })).toBe(6);
    expect(await feed.length()).toBe(0);
    const last = all.at(-1)!;
    expect(await feed.bounds()).toEqual({ first: last, last });
    expect(await feed.read(last, 10)).toEqual([]);
    await expect(feed.read(all[10]!, 10)).rejects.toBeInstanceOf(SnapshotTooOldError);
    expect(await feed.read(null, 10)).toEqual([]);
    // appending resumes after the sentinel
    await feed.append(tx(7, 1, { commitTime: now }));
    expect(seqs(await feed.read(last, 10))).toEqual(['0.700.0']);
    expect(await feed.bounds()).toEqual({ first: '0.700.0', last: '0.700.0' });
  });
});

describe('gap marker (log loss, onLogLoss: RESNAPSHOT)', () => {
  it('drops every change, answers SNAPSHOT_TOO_OLD to readers from before the gap, forgets the resume position, and goes on above it', async () => {
    const feed = newFeed();
    for (let n = 1; n <= 3; n++) await feed.append(tx(n, 2));
    const last = (await feed.bounds()).last;
    expect(last).toBe(makeSequence(0, 0x300, 1));
    const gap = await feed.markGap();
    expect(gap).toBe(makeSequence(0, 0x300, 2));
    expect(await feed.length()).toBe(0);
    expect(await feed.resumePosition()).toBeNull();
    expect(await feed.bounds()).toEqual({ first: gap, last: gap });
    // Even a reader that had read everything up to the loss missed the lost changes.
    await expect(feed.read(last, 10)).rejects.toBeInstanceOf(SnapshotTooOldError);
    await expect(feed.read(makeSequence(0, 0x100, 0), 10)).rejects.toBeInstanceOf(SnapshotTooOldError);
    expect(await feed.read(gap, 10)).toEqual([]);
    // The capture starts again at a later position: appended, read from the gap.
    expect(await feed.append(tx(9, 2))).toBe(2);
    expect(seqs(await feed.read(gap, 10))).toEqual([makeSequence(0, 0x900, 0), makeSequence(0, 0x900, 1)]);
    expect(await feed.resumePosition()).toEqual(tx(9, 2).resume);
    // A feed never written: the gap is 0.0.1.
    expect(await newFeed().markGap()).toBe('0.0.1');
  });
});

describe('readBlocking', () => {
  it('wakes up when another connection appends', async () => {
    const feed = newFeed();
    await feed.append(tx(1, 1));
    const other = new Redis(inject('redisUrl'));
    const writer = new RedisChangeFeed({ redis: other, name: feed.name, prefix });
    try {
      const latencies: number[] = [];
      let since = '0.100.0';
      for (let n = 2; n <= 11; n++) {
        const pending = feed.readBlocking(since, 10, 10_000);
        await new Promise((r) => setTimeout(r, 30));
        const t0 = performance.now();
        await writer.append(tx(n, 2));
        const got = await pending;
        latencies.push(performance.now() - t0);
        expect(seqs(got)).toEqual(seqs(tx(n, 2).events));
        since = got.at(-1)!.sequence;
      }
      latencies.sort((a, b) => a - b);
      console.log(JSON.stringify({ readBlockingWakeupMs: { median: +latencies[5]!.toFixed(2), max: +latencies[9]!.toFixed(2) } }));
      expect(latencies[5]!).toBeLessThan(100);
      // several waiters share one watcher. `c` waits above the tail, so the watcher blocks from there;
      // `a` then arrives at a lower position and must restart the block (CLIENT UNBLOCK), not wait a slice out.
      const c = feed.readBlocking(makeSequence(0, 0xd00, 0), 10, 10_000);
      await new Promise((r) => setTimeout(r, 30));
      const a = feed.readBlocking(since, 10, 10_000);
      const b = feed.readBlocking(since, 1, 10_000);
      await new Promise((r) => setTimeout(r, 30));
      const t0 = performance.now();
      await writer.append(tx(12, 1));
      expect(seqs(await a)).toEqual(['0.c00.0']);
      expect(seqs(await b)).toEqual(['0.c00.0']);
      expect(performance.now() - t0).toBeLessThan(1_000);
      await writer.append(tx(13, 2));
      expect(seqs(await c)).toEqual(['0.d00.1']);
    } finally {
      await writer.close();
      other.disconnect();
    }
  });

  it('returns immediately when changes exist, [] after the timeout, and [] on abort', async () => {
    const feed = newFeed();
    await feed.append(tx(1, 2));
    expect(seqs(await feed.readBlocking(null, 10, 5_000))).toEqual(['0.100.0', '0.100.1']);
    let t0 = performance.now();
    expect(await feed.readBlocking('0.100.1', 10, 300)).toEqual([]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    const ctl = new AbortController();
    t0 = performance.now();
    const pending = feed.readBlocking('0.100.1', 10, 30_000, ctl.signal);
    setTimeout(() => ctl.abort(), 50);
    expect(await pending).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(1_000);
    // close() releases waiters too
    const pending2 = feed.readBlocking('0.100.1', 10, 30_000);
    await new Promise((r) => setTimeout(r, 20));
    await feed.close();
    expect(await pending2).toEqual([]);
  });
});

describe('filters and names', () => {
  it('hides changes visible in a PostgreSQL snapshot', () => {
    const snap = parseSnapshot('100:110:102,105');
    expect([99, 100, 101, 102, 105, 109, 110, 200].map((x) => isVisibleInSnapshot(x, snap)))
      .toEqual([true, true, true, false, false, true, false, false]);
    expect(parseSnapshot('5:5:')).toEqual({ xmin: 5n, xmax: 5n, xip: new Set() });
    for (const bad of ['', '1:2', 'a:b:', '5:4:', '1:10:11', '1:10:0', '1:10:2,', '-1:2:', '01:2:', '1:2:3:4', ' 1:2:']) {
      expect(() => parseSnapshot(bad), bad).toThrowError(expect.objectContaining({ code: 'PARAMETER_INVALID' }));
    }
    // 32-bit xids from pgoutput against an epoch-extended snapshot (epoch 1)
    const wide = parseSnapshot(`${2n ** 32n + 100n}:${2n ** 32n + 110n}:${2n ** 32n + 105n}`);
    expect(isVisibleInSnapshot(99, wide)).toBe(true);
    expect(isVisibleInSnapshot(105, wide)).toBe(false);
    expect(isVisibleInSnapshot(150, wide)).toBe(false); // started after the snapshot
    expect(isVisibleInSnapshot(2 ** 32 - 10, wide)).toBe(true); // previous epoch
    const pg = tx(1, 1, { txid: '101' }).events[0]!;
    const later = tx(2, 1, { txid: '120' }).events[0]!;
    const maria = tx(3, 1, { txid: '101', source: 'mysql' }).events[0]!;
    expect(filterBySnapshot([pg, later, maria], snap)).toEqual({ events: [later, maria], ignoredNonPostgres: true });
  });

  it('validates scopes and filters by scope and table', () => {
    expect(validateScopes(['abc', 'a_b-1'])).toEqual(['abc', 'a_b-1']);
    expect(() => validateScope('Bad')).toThrowError(expect.objectContaining({ code: 'PARAMETER_INVALID', value: 'Bad' }));
    expect(() => validateScopes(['ok', 'no way'])).toThrowError(/no way/);
    expect(() => validateScopes([], { required: true })).toThrowError(FeedParameterError);
    const e = tx(1, 1, { scope: 'tenant1' }).events[0]!;
    expect(matchesScopes(e, ['x', 'tenant1'])).toBe(true);
    expect(matchesScopes(e, new Set(['x']))).toBe(false);
    expect(matchesScopes(tx(1, 1).events[0]!, ['tenant1'])).toBe(false);
    expect(matchesTables(e, ['public.items'])).toBe(true);
    expect(matchesTables(e, ['items'])).toBe(true);
    expect(matchesTables(e, ['other.items', 'public.item'])).toBe(false);
    expect(matchesTables(e, [])).toBe(true);
  });

  it('validates feed names and lists feeds', async () => {
    for (const bad of ['', 'a{b}', 'a:b', 'a b', 'x'.repeat(129), 'é']) {
      expect(() => openFeed(redis, bad), bad).toThrowError(expect.objectContaining({ code: 'PARAMETER_INVALID' }));
    }
    const p = `list${randomUUID().slice(0, 8)}`;
    const names = ['a.b-c_1', 'Z9', 'x'.repeat(128)];
    for (const name of names) {
      const feed = openFeed(redis, name, { prefix: p });
      feeds.push(feed);
      await feed.append(tx(1, 1));
    }
    expect(await listFeeds(redis, p)).toEqual([...names].sort());
    expect(openFeed(redis, 'a.b-c_1', { prefix: p }).keys).toEqual({
      stream: `${p}:feed:{a.b-c_1}:stream`, meta: `${p}:feed:{a.b-c_1}:meta`, columns: `${p}:feed:{a.b-c_1}:columns`,
    });
    await feeds.at(-1)!.destroy();
    expect(await listFeeds(redis, p)).toEqual(names.slice(0, 2).sort());
  });
});

describe('durability', () => {
  it('survives a Redis restart with appendonly', async () => {
    const server = await startRedis({ appendonly: true });
    const conn = new Redis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    try {
      const feed = new RedisChangeFeed({ redis: conn, name: 'durable' });
      for (let n = 1; n <= 5; n++) await feed.append(tx(n, 3));
      await feed.trim({ maxChanges: 10 });
      const before = { events: await feed.read(null, 100), bounds: await feed.bounds(), resume: await feed.resumePosition() };
      await server.restart(); // SIGTERM: Redis flushes the AOF on a clean shutdown
      const after = { events: await feed.read(null, 100), bounds: await feed.bounds(), resume: await feed.resumePosition() };
      expect(after).toEqual(before);
      // Whole pieces (transactions of 3) go: 12 changes stay for maxChanges 10.
      expect(before.events).toHaveLength(12);
      await expect(feed.read('0.100.1', 1)).rejects.toBeInstanceOf(SnapshotTooOldError);
      expect(await feed.read('0.100.2', 1)).toHaveLength(1);
      expect(await feed.append(tx(5, 3))).toBe(0);
      expect(await feed.append(tx(6, 1))).toBe(1);
      await feed.close();
    } finally {
      conn.disconnect();
      await server.stop();
    }
  });
});
