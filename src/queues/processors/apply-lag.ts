/**
 * The figure an apply task publishes as its job's `lagMs` (GraphQL
 * job.metrics, `tributary_job_lag_seconds`, the LAG_WARN_SECONDS log line).
 *
 * Flowing: the mean lag of the changes of the last applied batch, measured
 * when it was applied (apply-runner.ts: a batch read from a backlog spans
 * seconds of commits). Caught up (the feed found drained and nothing applied
 * for a second since): 0, not the age of the last change applied, which would
 * grow while the source is idle.
 *
 * Stuck: that figure only moves when a batch is applied, so an apply that
 * makes no progress (a lock held at the destination, a hung transaction or
 * connection) would keep showing its last small value while the backlog
 * ages. Once the batch in hand has not been applied for STUCK_MS, the figure
 * is the age of its first change, the oldest change not yet applied: now
 * minus its commit time (its lag clock, commit-clock.ts), so it grows with
 * the wall clock until the batch is applied, and then it is the batch's
 * measured lag again. That commit time is exact and already in hand (the
 * batch was read); "last lag + time since the last apply" would be neither
 * (after an idle source it counts the idle time as lag). Below STUCK_MS
 * nothing changes: a batch in normal flow is applied within milliseconds
 * to a few hundred, so the steady-state figure stays the batch mean.
 *
 * A destination that is down fails every attempt of the apply (retried every
 * 2 s), so no batch stays in hand. Each attempt therefore starts from the
 * figure last published (not null), and when a change waits unapplied (the
 * first one after the job's appliedSequence) it counts as stuck at once
 * (behind()): the figure each failed attempt writes is that change's age, a
 * step per attempt. A healthy attempt reads its first batch within
 * milliseconds, before its first write, and goes on as above.
 */

/** How long a batch may be in hand, unapplied, before lag is taken from its oldest change. */
export const STUCK_MS = 1000;
/** Caught up this long (drained, nothing applied) before lag reads 0. */
const CAUGHT_UP_MS = 1000;

export class ApplyLag {
  /** Mean lag of the last applied batch when it was applied, ms (0 once caught up); null before the first. */
  private measured: number | null;
  private appliedAt = 0;
  private drainedAt = 0;
  /** The batch being applied: the lag clock of its oldest change, and when its apply began. */
  private pending: { oldest: number; since: number } | undefined;

  /** `last`: the figure the previous attempt published (the job's lagMs), shown until this attempt measures its own. */
  constructor(last: number | null = null) {
    this.measured = last;
  }

  /** A change left unapplied by an earlier attempt (its lag clock): stuck from the start, until a batch is read. */
  behind(oldestCommitTime: number): void {
    this.pending = { oldest: oldestCommitTime, since: Number.NEGATIVE_INFINITY };
  }

  /** A batch was read; its apply begins. */
  batch(oldestCommitTime: number, now = Date.now()): void {
    this.pending = { oldest: oldestCommitTime, since: now };
  }

  /** The batch was applied; `meanCommitTime`: the mean lag clock of its changes. */
  applied(meanCommitTime: number, now = Date.now()): void {
    this.measured = Math.max(0, Math.round(now - meanCommitTime));
    this.appliedAt = now;
    this.pending = undefined;
  }

  /** A read found the feed drained. */
  drained(now = Date.now()): void {
    this.drainedAt = now;
  }

  /** True while a batch has been in hand, unapplied, for STUCK_MS or more. */
  stuck(now = Date.now()): boolean {
    return this.pending !== undefined && now - this.pending.since >= STUCK_MS;
  }

  /**
   * The figure to publish at `now`. `writtenAt`: when a figure was last
   * written; a measured lag is zeroed (caught up) only once it was written
   * after the apply that measured it, so a reader always gets to see it.
   */
  figure(now: number, writtenAt: number): number | null {
    if (!this.pending && this.drainedAt > this.appliedAt && now - this.appliedAt > CAUGHT_UP_MS && writtenAt > this.appliedAt) this.measured = 0;
    if (this.pending && this.stuck(now)) return Math.max(this.measured ?? 0, Math.max(0, Math.round(now - this.pending.oldest)));
    return this.measured;
  }
}
