import { describe, expect, it } from 'vitest';
import { lagClockOf, mariadbCommitEstimate, markCommitEstimate } from '../../../src/replication/commit-clock.ts';
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
});
