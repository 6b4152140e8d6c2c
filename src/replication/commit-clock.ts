/**
 * The commit time lag is measured from (job `lagMs`, the capture's `lag_ms`).
 *
 * A change's `commitTime` is what the source says and is part of the feed
 * payload, which must stay identical when a transaction is read again after a
 * restart. PostgreSQL stamps commits in microseconds, so lag uses it as is.
 * MariaDB's binlog stamps them in whole seconds: `commitTime` is the start of
 * the second, and lag measured from it reads up to 1 s high. For lag only,
 * a MariaDB capture therefore also records a precise estimate
 * (mariadbCommitEstimate) beside the payload: the feed stores it in the stream
 * entry's field `r`, outside the payload and outside the append's identity
 * check, and the reader attaches it to the decoded events here, out of band
 * (a WeakMap, so no event's shape or equality changes).
 */
import type { ChangeEvent } from './change-event.ts';

const estimates = new WeakMap<ChangeEvent, number>();

/**
 * A MariaDB commit's time on this process's clock, from its binlog timestamp
 * `binlogMs` (whole seconds) and `observedMs`, when the capture received the
 * commit event. The commit lies in [binlogMs, binlogMs + 1000) and before it
 * was observed, so the estimate is min(observed, binlogMs + 999): for a live
 * capture (received within the second) the receipt time, late only by the
 * binlog's delivery; for a transaction read late (a backlog, a re-read after
 * a restart) the end of its second, at most 1 s early, never later than the
 * truth. Observed before the binlog's second began means this clock is behind
 * the source's: the receipt time is then the only figure on this clock, and
 * lag from it stays non-negative.
 */
export function mariadbCommitEstimate(binlogMs: number, observedMs: number): number {
  if (observedMs < binlogMs) return observedMs;
  return Math.min(observedMs, binlogMs + 999);
}

/** Records `ms` as the lag clock of events[from, to). */
export function markCommitEstimate(events: readonly ChangeEvent[], ms: number, from = 0, to = events.length): void {
  for (let i = from; i < to; i++) estimates.set(events[i]!, ms);
}

/** The time lag of `e` is measured from: the precise estimate when one was recorded, else its commit time. */
export function lagClockOf(e: ChangeEvent): number {
  return estimates.get(e) ?? e.commitTime;
}
