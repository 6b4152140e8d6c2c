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
 * `binlogMs` (whole seconds), `observedMs`, when the capture received the
 * commit event, and `bracket`, when the binlog clock (capture/binlog-clock.ts)
 * saw the binlog reach the commit's end: after `after`, before `before`.
 *
 * The commit lies in [binlogMs, binlogMs + 1000), before it was observed,
 * and inside the bracket. When a sample saw the commit before the capture
 * received it (the capture is behind, or the sample fell between commit and
 * receipt), the estimate is the middle of what is left of that interval:
 * within half a sampling interval (25 ms) of the truth. Otherwise it is the
 * upper bound min(observed, binlogMs + 999): for a live capture the receipt
 * time, late only by the binlog's delivery; for a transaction read late (a
 * re-read after a restart) the end of its second, never later than the
 * truth. Observed before the binlog's second began means this clock is
 * behind the source's: the receipt time is then the only figure on this
 * clock, and lag from it stays non-negative.
 */
export function mariadbCommitEstimate(binlogMs: number, observedMs: number, bracket: { after?: number; before?: number } = {}): number {
  if (observedMs < binlogMs) return observedMs;
  const upper = Math.min(observedMs, binlogMs + 999);
  if (bracket.before === undefined || bracket.before >= observedMs) return upper;
  const hi = Math.min(upper, bracket.before);
  const lo = Math.max(binlogMs, bracket.after ?? binlogMs);
  return lo <= hi ? Math.round((lo + hi) / 2) : hi;
}

/**
 * Records `ms` as the lag clock of events[from, to), one transaction's (a
 * feed piece's): on its first and last event only. Every change of a
 * transaction shares it, and marking each change cost a WeakMap entry per
 * change (ephemerons the collector has to trace) in a bulk catch-up.
 */
export function markCommitEstimate(events: readonly ChangeEvent[], ms: number, from = 0, to = events.length): void {
  if (to <= from) return;
  estimates.set(events[from]!, ms);
  if (to - 1 > from) estimates.set(events[to - 1]!, ms);
}

/** The time lag of `e` is measured from: the precise estimate when one was recorded (first and last change of a piece), else its commit time. */
export function lagClockOf(e: ChangeEvent): number {
  return estimates.get(e) ?? e.commitTime;
}

/**
 * The mean lag clock of `events` (in feed order), weighting each transaction
 * by its changes: a transaction's estimate is looked up on the first and last
 * of its changes here, where pieces are marked.
 */
export function meanLagClock(events: readonly ChangeEvent[]): number {
  if (events.length === 0) return NaN;
  const ref = lagClockOf(events[events.length - 1]!);
  let behind = 0;
  for (let i = 0; i < events.length;) {
    const seq = events[i]!.commitSequence;
    let j = i + 1;
    while (j < events.length && events[j]!.commitSequence === seq) j++;
    const clock = estimates.get(events[i]!) ?? estimates.get(events[j - 1]!) ?? events[i]!.commitTime;
    // Relative to the last one: exact in doubles for any batch.
    behind += (ref - clock) * (j - i);
    i = j;
  }
  return ref - behind / events.length;
}
