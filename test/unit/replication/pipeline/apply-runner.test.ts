/**
 * The apply runner's ordering guarantees: each lane applies its parts in order and once; onApplied reports
 * batches in order, each after every lane applied it; DDL waits for every lane; a lane's failure stops the run;
 * a batch is reported when applied, not when the next read of a quiet feed returns. The feed and applier here
 * record the runner's calls (the integration and chaos suites run it against real servers).
 */
import { describe, expect, it } from 'vitest';
import { runApply } from '../../../../src/replication/pipeline/apply-runner.ts';
import type { Applier } from '../../../../src/replication/apply/applier.ts';
import type { ChangeFeed } from '../../../../src/replication/feed/change-feed.ts';
import type { ChangeEvent } from '../../../../src/replication/change-event.ts';
import { compareSequences } from '../../../../src/replication/sequence.ts';
import { ddl, ins } from '../support-events.ts';

const seq = (b: number, i: number) => `1.${b.toString(16)}.${i.toString(16)}`;

/** `n` batches of `size` inserts (keys spread over the lanes), batch b's changes in transaction b; `ddlAt`: a DDL inside that batch. */
function batches(n: number, size: number, ddlAt = -1): ChangeEvent[][] {
  const out: ChangeEvent[][] = [];
  let id = 0;
  for (let b = 1; b <= n; b++) {
    const evs: ChangeEvent[] = [];
    for (let i = 0; i < size; i++) {
      const e = b === ddlAt && i === size / 2 ? ddl('ALTER TABLE s.t ADD c int') : ins({ id: id++, v: 'x' });
      evs.push({ ...e, sequence: seq(b, i), commitSequence: String(b), index: i, commitTime: 1000 + b });
    }
    out.push(evs);
  }
  return out;
}

/** A feed serving `all` in order from `from`, then empty reads after their wait (a quiet feed's blocking read). */
function feedOf(all: ChangeEvent[][]): ChangeFeed {
  return {
    async readBlocking(from: string | null, _limit: number, wait: number, signal?: AbortSignal) {
      await new Promise((r) => setTimeout(r, 1));
      const b = all.find((evs) => from === null || compareSequences(evs.at(-1)!.sequence, from) > 0);
      if (!b) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, wait);
          signal?.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
        });
      }
      return b ? b.filter((e) => from === null || compareSequences(e.sequence, from) > 0) : [];
    },
  } as unknown as ChangeFeed;
}

interface Call { lane: number; seq: string; n: number; start: number; end: number; ddl: boolean }

/** An applier that takes `delay(lane, call)` ms per part and records each call's start and end (a step counter). */
function recorder(delay: (lane: number, k: number) => number, fail?: (lane: number, k: number) => boolean) {
  let clock = 0;
  const calls: Call[] = [];
  const perLane = new Map<number, number>();
  const applier = {
    async readCheckpoint() { return null; },
    async applyBatch(events: ChangeEvent[], lane: number, sequence: string) {
      const k = perLane.get(lane) ?? 0;
      perLane.set(lane, k + 1);
      const c: Call = { lane, seq: sequence, n: events.length, start: ++clock, end: -1, ddl: events.some((e) => e.ddl !== undefined) };
      calls.push(c);
      await new Promise((r) => setTimeout(r, delay(lane, k)));
      if (fail?.(lane, k)) { c.end = ++clock; throw new Error(`lane ${lane} failed`); }
      c.end = ++clock;
    },
  } as unknown as Applier;
  return { applier, calls, now: () => ++clock };
}

async function run(all: ChangeEvent[][], lanes: number, applier: Applier, now: () => number) {
  const applied: { seq: string; at: number; count: number }[] = [];
  const batchesSeen: number[] = [];
  let drained = 0;
  const outcome = await runApply({
    feed: feedOf(all), applier, lanes, signal: new AbortController().signal, blockMs: 1,
    onBatch: ({ oldestCommitTime }) => { batchesSeen.push(oldestCommitTime); },
    onApplied: ({ lastSequence, count }) => { applied.push({ seq: lastSequence, at: now(), count }); },
    onDrained: () => { drained++; },
    shouldFinish: async () => drained > 0,
  });
  return { outcome, applied, batchesSeen };
}

describe('runApply', () => {
  it('applies each lane in order and once, and reports every batch in order once all its lanes are done', async () => {
    const all = batches(8, 1500);
    const { applier, calls, now } = recorder((lane, k) => (lane === 1 ? 6 : 1) + (k % 3));
    const { outcome, applied, batchesSeen } = await run(all, 3, applier, now);
    expect(outcome).toBe('finished');
    expect(applied.map((a) => a.seq)).toEqual(all.map((b) => b.at(-1)!.sequence));
    expect(applied.reduce((n, a) => n + a.count, 0)).toBe(8 * 1500);
    for (let lane = 0; lane < 3; lane++) {
      const mine = calls.filter((c) => c.lane === lane);
      // In order, one at a time, every change once.
      for (let i = 1; i < mine.length; i++) {
        expect(compareSequences(mine[i]!.seq, mine[i - 1]!.seq)).toBeGreaterThan(0);
        expect(mine[i]!.start).toBeGreaterThan(mine[i - 1]!.end);
      }
    }
    expect(calls.reduce((n, c) => n + c.n, 0)).toBe(8 * 1500);
    // Reported only after every lane's part of the batch (and all before it) ended.
    for (const a of applied) for (const c of calls.filter((x) => compareSequences(x.seq, a.seq) <= 0)) expect(c.end).toBeLessThan(a.at);
    // The batch in hand is announced in order, each once.
    expect(batchesSeen).toEqual(all.map((b) => b[0]!.commitTime));
  });

  it('waits for every lane before a DDL, and applies nothing after it until it is done', async () => {
    const all = batches(5, 1500, 3);
    const { applier, calls, now } = recorder((lane) => (lane === 0 ? 2 : 8));
    await run(all, 2, applier, now);
    const d = calls.find((c) => c.ddl)!;
    expect(d.lane).toBe(0);
    for (const c of calls) {
      if (c === d) continue;
      if (compareSequences(c.seq, d.seq) < 0) expect(c.end).toBeLessThan(d.start);
      else expect(c.start).toBeGreaterThan(d.end);
    }
  });

  it("stops at a lane's failure: the error is the run's, nothing later goes to that lane, nothing is left applying", async () => {
    const all = batches(8, 1500);
    const { applier, calls, now } = recorder((lane) => (lane === 1 ? 5 : 1), (lane, k) => lane === 1 && k === 2);
    let applied: string[] = [];
    const p = runApply({
      feed: feedOf(all), applier, lanes: 2, signal: new AbortController().signal, blockMs: 1,
      onApplied: ({ lastSequence }) => { applied.push(lastSequence); now(); },
    });
    await expect(p).rejects.toThrow('lane 1 failed');
    const failed = calls.find((c) => c.lane === 1 && c.seq === all[2]!.at(-1)!.sequence)!;
    expect(calls.filter((c) => c.lane === 1 && compareSequences(c.seq, failed.seq) > 0)).toEqual([]);
    expect(calls.every((c) => c.end > 0)).toBe(true);
    // Batches up to the one before the failure may be reported; the failed one and later never.
    expect(applied.every((s) => compareSequences(s, failed.seq) < 0)).toBe(true);
    applied = [];
  });

  it('reports a batch as soon as its lanes are done, not when the next blocking read of a quiet feed returns', async () => {
    const all = batches(1, 1500);
    const { applier, calls } = recorder(() => 5);
    const ac = new AbortController();
    let reportedAt = 0;
    const p = runApply({
      feed: feedOf(all), applier, lanes: 2, signal: ac.signal, blockMs: 3000,
      onApplied: () => { reportedAt = performance.now(); ac.abort(); },
    });
    const t0 = performance.now();
    await p;
    expect(calls.length).toBe(2);
    expect(reportedAt - t0).toBeLessThan(1000);
  });
});
