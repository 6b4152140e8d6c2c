/**
 * Local echo (src/replication/feed/local-echo.ts): an apply reading the feed
 * its own process's capture appends takes those pieces from memory, and
 * Redis leaves their payload out of the read. These cases hold it to reading
 * exactly what a plain reader reads: entries appended without the token
 * (another process) always arrive in full, a held piece missing from memory
 * is fetched again, a held piece of another generation is never used, and a
 * read starting inside a held piece skips what the reader has seen.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Operation, type CapturedTransaction, type ChangeEvent } from '../../../src/replication/change-event.ts';
import { RedisChangeFeed } from '../../../src/replication/feed/redis-change-feed.ts';
import { ECHO_ROOM, ECHO_STALL_MS, echoOf, MAX_HELD_EVENTS, MAX_HELD_TEXT, watchEcho } from '../../../src/replication/feed/local-echo.ts';
import { makeSequence, toStreamId } from '../../../src/replication/sequence.ts';
import { appendedHere, TailWatcher } from '../../../src/replication/feed/tail-watcher.ts';

let redis: Redis;
const prefix = `le${randomUUID().slice(0, 8)}`;
const opened: RedisChangeFeed[] = [];

function tx(n: number, count: number, pad = ''): CapturedTransaction {
  const commitTime = 1_700_000_000_000 + n;
  const events: ChangeEvent[] = Array.from({ length: count }, (_, i) => ({
    source: 'postgres', sequence: makeSequence(0, n * 0x100, i), txid: String(1000 + n), commitSequence: String(n * 0x100), index: i,
    op: Operation.Insert, schema: 'public', table: 'items', key: ['id'], before: null, after: { id: n * 1000 + i, name: `row ${n}/${i}${pad}` },
    columns: [{ name: 'id', kind: 'int', sourceType: 'integer' }, { name: 'name', kind: 'text', sourceType: 'text' }], commitTime,
  }));
  return { txid: String(1000 + n), commitSequence: String(n * 0x100), commitTime, resume: { kind: 'postgres', lsn: `0/${(n * 0x100 + 0x80).toString(16)}` }, events };
}

/** A capture's view (appends with the feed's generation), an apply's (local echo) and a plain reader, on one feed. */
async function trio() {
  const name = `echo-${randomUUID()}`;
  const capture = new RedisChangeFeed({ redis, name, prefix });
  const apply = new RedisChangeFeed({ redis, name, prefix, localEcho: true });
  const plain = new RedisChangeFeed({ redis, name, prefix });
  opened.push(capture, apply, plain);
  // The first append creates the feed (its generation); a capture task knows it from then on.
  await capture.append(tx(1, 2));
  const generation = (await redis.hget(capture.keys.meta, 'createdAt'))!;
  return { capture, apply, plain, generation, unwatch: watchEcho(capture.keys.stream) };
}

beforeAll(() => { redis = new Redis(inject('redisUrl')); });
afterAll(async () => {
  for (const f of opened) { await f.close(); await f.destroy().catch(() => undefined); }
  redis.disconnect();
});

describe('local echo', () => {
  it('reads held pieces from memory and everything else from Redis, exactly as a plain reader does', async () => {
    const { capture, apply, plain, generation, unwatch } = await trio();
    try {
      await capture.append(tx(2, 3), { generation });
      // Appended without the watch: as if by another process (no token on the entry).
      unwatch();
      await capture.append(tx(3, 2), { generation });
      const rewatch = watchEcho(capture.keys.stream);
      try {
        await capture.appendMany([tx(4, 1), tx(5, 2)], { generation });
        await capture.append(tx(6, 1500), { generation }); // two pieces
        const fields = (await redis.xrange(capture.keys.stream, '-', '+')).map(([, f]) => f);
        expect(fields.filter((f) => f.includes('o')).length).toBe(5); // tx 2, tx 4 and 5, tx 6 in two pieces
        const expected = await plain.read(null, 100_000);
        const got = await apply.read(null, 10_000);
        expect(got).toEqual(expected);
        expect(got.map((e) => e.sequence)).toEqual(expected.map((e) => e.sequence));
        // tx 2 was let go with the first watch (below the held range: it comes in full); tx 4, 5 and both pieces of 6 from memory.
        expect(apply.echoStats.taken).toBe(4);
        expect(apply.echoStats.refetched).toBe(0);
        // Inside a held piece: only what comes after `since`.
        const since = makeSequence(0, 6 * 0x100, 1200);
        expect(await apply.read(since, 10_000)).toEqual(await plain.read(since, 10_000));
      } finally {
        rewatch();
      }
    } finally {
      unwatch();
    }
  });

  it('fetches a held piece again when memory lost it, and never uses one of another generation', async () => {
    const { capture, apply, plain, generation, unwatch } = await trio();
    try {
      for (let n = 2; n <= 5; n++) await capture.append(tx(n, 3), { generation });
      const echo = echoOf(capture.keys.stream)!;
      // Lost from memory while Redis still marks it as this process's.
      echo.lose(toStreamId(makeSequence(0, 3 * 0x100, 2)));
      // Held under another generation (a feed deleted and created again under the name).
      echo.get(toStreamId(makeSequence(0, 4 * 0x100, 2)))!.generation = `${generation}0`;
      const got = await apply.read(null, 10_000);
      expect(got).toEqual(await plain.read(null, 10_000));
      expect(apply.echoStats).toEqual({ taken: 2, refetched: 2, chained: 0 });
    } finally {
      unwatch();
    }
  });

  it('past MAX_HELD_EVENTS the oldest pieces keep only their entry text, decoded as Redis\'s reply would be; past MAX_HELD_TEXT they go', async () => {
    const { capture, apply, plain, generation, unwatch } = await trio();
    try {
      // 13 transactions of 1,000 changes, one with a MariaDB-style commit estimate (the entry's field r).
      const last = 1 + Math.ceil(MAX_HELD_EVENTS / 1000) + 3;
      for (let n = 2; n <= last; n++) await capture.append(n === 3 ? { ...tx(n, 1000), commitEstimate: 1_700_000_000_500 } : tx(n, 1000), { generation });
      const echo = echoOf(capture.keys.stream)!;
      const held = echo.ids().map((id) => echo.get(id)!);
      expect(held).toHaveLength(last - 1);
      expect(held.filter((p) => p.events).reduce((n, p) => n + p.count, 0)).toBeLessThanOrEqual(MAX_HELD_EVENTS);
      expect(held.filter((p) => !p.events).length).toBeGreaterThanOrEqual(3);
      const expected = await plain.read(null, 100_000);
      expect(await apply.read(null, 100_000)).toEqual(expected);
      expect(apply.echoStats).toEqual({ taken: last - 1, refetched: 0, chained: 0 });
      // From inside a text-held piece: only what follows.
      const since = makeSequence(0, 3 * 0x100, 500);
      expect(await apply.read(since, 10_000)).toEqual(await plain.read(since, 10_000));

      // Text beyond MAX_HELD_TEXT characters is let go (oldest first): those pieces come from Redis again.
      const big = 'x'.repeat(1000);
      const pieces = Math.ceil(MAX_HELD_TEXT / (1000 * 1000)) + 4;
      for (let n = last + 1; n <= last + pieces; n++) await capture.append(tx(n, 1000, big), { generation });
      expect(echo.heldText).toBeLessThanOrEqual(MAX_HELD_TEXT);
      const fresh = new RedisChangeFeed({ redis, name: capture.name, prefix, localEcho: true });
      opened.push(fresh);
      const since2 = makeSequence(0, last * 0x100, 999);
      const all = await fresh.read(since2, 100_000);
      expect(all.length).toBe(pieces * 1000);
      expect(all).toEqual(await plain.read(since2, 100_000));
      expect(fresh.echoStats.refetched).toBe(0); // let go below the held range: those entries came in full, never marked
      // Held ones from memory: through the read script (taken), or without it where they follow one another (chained).
      expect(fresh.echoStats.taken + fresh.echoStats.chained).toBe(echo.ids().length);
    } finally {
      unwatch();
    }
  });

  it('reads on from memory alone while the held pieces follow each other in the feed, and from Redis where another appender came between', async () => {
    const { capture, apply, plain, generation, unwatch } = await trio();
    try {
      await capture.append(tx(2, 3), { generation });
      await capture.appendMany([tx(3, 1), tx(4, 2)], { generation });
      await capture.append(tx(5, 1500), { generation }); // two pieces
      await capture.append(tx(6, 2)); // without the generation: not held, as if appended by another process
      await capture.append(tx(7, 4), { generation });
      const start = makeSequence(0, 2 * 0x100, 2);
      const expected = await plain.read(start, 100_000);
      expect(expected.map((e) => e.txid)).toEqual([...Array(1 + 2 + 1500 + 2 + 4)].map((_, i) => String(1000 + (i < 1 ? 3 : i < 3 ? 4 : i < 1503 ? 5 : i < 1505 ? 6 : 7))));
      const got: ChangeEvent[] = [];
      const reads: number[] = [];
      for (let since = start; ;) {
        const part = await apply.read(since, 1000);
        if (part.length === 0) break;
        reads.push(part.length);
        got.push(...part);
        since = part.at(-1)!.sequence;
      }
      expect(got).toEqual(expected);
      // tx 3, 4 and the first piece of 5; then inside that piece, on to its second; then tx 6 and 7 by the read script.
      expect(reads).toEqual([1000, 503, 6]);
      expect(apply.echoStats).toEqual({ taken: 1, refetched: 0, chained: 5 });

      // A held piece of another generation (the feed created again) is not read from memory.
      await capture.append(tx(8, 2), { generation });
      await capture.append(tx(9, 2), { generation });
      const echo = echoOf(capture.keys.stream)!;
      echo.get(toStreamId(makeSequence(0, 9 * 0x100, 1)))!.generation = `${generation}0`;
      const since = makeSequence(0, 7 * 0x100, 3);
      expect(await apply.read(since, 1000)).toEqual(await plain.read(since, 1000));
      expect(apply.echoStats).toEqual({ taken: 2, refetched: 1, chained: 5 });
    } finally {
      unwatch();
    }
  });

  it('a capture waits while its moving apply has ECHO_ROOM changes held unread, and not for a stuck one', async () => {
    const { capture, apply, generation, unwatch } = await trio();
    try {
      const echo = echoOf(capture.keys.stream)!;
      const count = Math.ceil(ECHO_ROOM / 1000);
      for (let n = 2; n <= count + 2; n++) await capture.append(tx(n, 1000), { generation });
      // The apply reads (it is moving), then the capture finds too much held unread.
      await apply.read(makeSequence(0, 1 * 0x100, 1), 1);
      const signal = new AbortController().signal;
      let roomAt = 0;
      const started = Date.now();
      const waiting = capture.localRoom(signal).then(() => { roomAt = Date.now(); });
      await new Promise((r) => setTimeout(r, 100));
      expect(roomAt).toBe(0);
      // Reading past the first pieces makes room at once.
      await apply.read(makeSequence(0, 4 * 0x100, 999), 1);
      await waiting;
      expect(roomAt - started).toBeLessThan(ECHO_STALL_MS);
      // Held unread again, with an apply that stops reading: the capture goes on after ECHO_STALL_MS.
      for (let n = count + 3; n <= count + 6; n++) await capture.append(tx(n, 1000), { generation });
      expect(echo.held + echo.heldTextChanges).toBeGreaterThan(ECHO_ROOM);
      const t0 = Date.now();
      await capture.localRoom(signal);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(ECHO_STALL_MS - 300);
      expect(Date.now() - t0).toBeLessThan(ECHO_STALL_MS + 1000);
    } finally {
      unwatch();
    }
    // No apply watching: no wait.
    const t1 = Date.now();
    await capture.localRoom(new AbortController().signal);
    expect(Date.now() - t1).toBeLessThan(50);
  });

  it('drops what the reader passed, and holds nothing once the apply stops watching', async () => {
    const { capture, apply, generation, unwatch } = await trio();
    for (let n = 2; n <= 4; n++) await capture.append(tx(n, 2), { generation });
    const echo = echoOf(capture.keys.stream)!;
    expect(echo.ids()).toHaveLength(3);
    await apply.read(makeSequence(0, 3 * 0x100, 1), 10_000);
    expect(echo.ids()).toEqual([toStreamId(makeSequence(0, 4 * 0x100, 1))]);
    unwatch();
    expect(echoOf(capture.keys.stream)).toBeUndefined();
    await capture.append(tx(5, 2), { generation });
    expect((await redis.xrange(capture.keys.stream, '-', '+')).at(-1)![1]).not.toContain('o');
  });

  it('an apply waiting at the end of what its capture here appended is woken by that capture, not by Redis, and reads from memory', async () => {
    const { capture, apply, plain, generation, unwatch } = await trio();
    try {
      await capture.append(tx(2, 2), { generation });
      const since = makeSequence(0, 2 * 0x100, 1);
      expect(echoOf(capture.keys.stream)!.nothingAfter(toStreamId(since))).toBe(true);
      // A watcher woken only by this process: no entry exists above the id it waits from, so no XREAD would return.
      const watcher = new TailWatcher({ redis, key: `${capture.keys.stream}:nothing-here` });
      const t0 = Date.now();
      const woke = watcher.wait('5-0', 5000);
      appendedHere(`${capture.keys.stream}:nothing-here`, '6-0');
      expect(await woke).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1000);
      await watcher.close();
      // The apply waits first (nothing of this process's after `since`), the append wakes it, the read is the held piece.
      const reading = apply.readBlocking(since, 1000, 5000);
      await new Promise((r) => setTimeout(r, 50));
      const before = apply.echoStats.chained;
      await capture.append(tx(3, 2), { generation });
      const got = await reading;
      expect(got).toEqual(await plain.read(since, 1000));
      expect(got.map((e) => e.sequence)).toEqual([makeSequence(0, 3 * 0x100, 0), makeSequence(0, 3 * 0x100, 1)]);
      expect(apply.echoStats.chained).toBe(before + 1);
    } finally {
      unwatch();
    }
  });
});
