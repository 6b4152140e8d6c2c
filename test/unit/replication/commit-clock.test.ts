import { describe, expect, it } from 'vitest';
import { lagClockOf, mariadbCommitEstimate, markCommitEstimate, meanLagClock } from '../../../src/replication/commit-clock.ts';
import type { ChangeEvent } from '../../../src/replication/change-event.ts';

describe('commit clock (lag of a MariaDB change)', () => {
  const ts = 1_700_000_000_000; // a binlog stamp: whole seconds

  it('a commit received within its binlog second: the receipt time', () => {
    expect(mariadbCommitEstimate(ts, ts)).toBe(ts);
    expect(mariadbCommitEstimate(ts, ts + 437)).toBe(ts + 437);
    expect(mariadbCommitEstimate(ts, ts + 999)).toBe(ts + 999);
  });

  it('received after its second (a backlog, a re-read): the end of the second, never later', () => {
    expect(mariadbCommitEstimate(ts, ts + 1000)).toBe(ts + 999);
    expect(mariadbCommitEstimate(ts, ts + 3_600_000)).toBe(ts + 999);
  });

  it('received before its second began (this clock behind the source): the receipt time, so lag stays non-negative', () => {
    expect(mariadbCommitEstimate(ts, ts - 250)).toBe(ts - 250);
  });

  it('a binlog-clock bracket seen before the receipt (a capture behind): the middle of what is left of it', () => {
    // Received 700 ms into the second; the binlog reached the commit between +180 and +230.
    expect(mariadbCommitEstimate(ts, ts + 700, { after: ts + 180, before: ts + 230 })).toBe(ts + 205);
    // Received seconds late: still the bracket, not the end of the second.
    expect(mariadbCommitEstimate(ts, ts + 5000, { after: ts + 400, before: ts + 450 })).toBe(ts + 425);
    // A bracket that starts before the second: cut at its start.
    expect(mariadbCommitEstimate(ts, ts + 700, { after: ts - 30, before: ts + 20 })).toBe(ts + 10);
    // No sample had seen it before the receipt (a live capture): the receipt time.
    expect(mariadbCommitEstimate(ts, ts + 120, { after: ts + 100, before: ts + 140 })).toBe(ts + 120);
    expect(mariadbCommitEstimate(ts, ts + 120, { after: ts + 100 })).toBe(ts + 120);
  });

  it('events carry the estimate out of band: no change to the event, commitTime without one', () => {
    const a = { commitTime: ts } as ChangeEvent;
    const b = { commitTime: ts } as ChangeEvent;
    const c = { commitTime: ts } as ChangeEvent;
    markCommitEstimate([a, b, c], ts + 12, 1);
    expect(lagClockOf(a)).toBe(ts);
    expect(lagClockOf(b)).toBe(ts + 12);
    expect(lagClockOf(c)).toBe(ts + 12);
    expect(Object.keys(b)).toEqual(['commitTime']);
  });

  it('marks the first and last change of a piece; the batch mean weighs each transaction by its changes', () => {
    const ev = (seq: string) => ({ commitTime: ts, commitSequence: seq }) as ChangeEvent;
    const t1 = [ev('1'), ev('1'), ev('1'), ev('1')];
    const t2 = [ev('2'), ev('2')];
    const t3 = [ev('3'), ev('3')];
    markCommitEstimate(t1, ts + 100);
    markCommitEstimate(t2, ts + 400);
    expect(lagClockOf(t1[0]!)).toBe(ts + 100);
    expect(lagClockOf(t1[3]!)).toBe(ts + 100);
    expect(lagClockOf(t1[1]!)).toBe(ts);
    // t3 has no estimate (a PostgreSQL source: commitTime is precise).
    expect(meanLagClock([...t1, ...t2, ...t3])).toBeCloseTo((4 * (ts + 100) + 2 * (ts + 400) + 2 * ts) / 8, 6);
    // A batch that starts inside a transaction still finds its estimate on the transaction's last change.
    expect(meanLagClock([t1[2]!, t1[3]!, ...t2])).toBeCloseTo(ts + 250, 6);
  });
});
