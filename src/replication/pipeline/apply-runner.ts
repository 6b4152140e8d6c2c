/**
 * Feed -> destination. Reads the feed from the lowest lane checkpoint, splits
 * each batch into ParallelWorkers lanes by primary-key hash and applies the
 * lanes concurrently; each lane's rows and checkpoint commit in one
 * destination transaction (the applier skips events at or below a lane's
 * checkpoint, so a replay after a crash neither duplicates nor loses). DDL is
 * a barrier: the batch is cut there and the DDL applied alone, then every
 * lane's checkpoint moves past it.
 *
 * A batch of at most WHOLE_MAX_EVENTS changes goes in one destination
 * transaction for all lanes (Applier.applyWhole: each lane's part filtered by
 * its own checkpoint, every lane's checkpoint moved with the rows), where the
 * applier can: lanes side by side gain nothing there, and a transaction per
 * lane doubled the round trips and the destination's commits (issue 12).
 * Otherwise a lane with nothing in a batch moves its checkpoint at most once
 * a second while the feed keeps coming, and at once when the feed is
 * drained. A lane behind only makes a restart re-read more; every lane skips
 * what its checkpoint covers, so nothing is applied twice.
 */
import type { ChangeEvent } from '../change-event.ts';
import type { Applier } from '../apply/applier.ts';
import { cutAtDdl, splitLanes } from '../apply/lanes.ts';
import type { ChangeFeed } from '../feed/change-feed.ts';
import { compareSequences } from '../sequence.ts';
import { Operation } from '../change-event.ts';
import { lagClockOf, meanLagClock } from '../commit-clock.ts';

export interface ApplyRunnerOptions {
  feed: ChangeFeed;
  applier: Applier;
  lanes: number;
  /** Changes per read. Default 5000. */
  batchSize?: number;
  signal: AbortSignal;
  /** Only events passing this are written (checkpoints still advance). */
  filter?: (e: ChangeEvent) => boolean;
  /** Maps an event before apply (e.g. rename). */
  map?: (e: ChangeEvent) => ChangeEvent;
  /**
   * After each batch. `transactions` counts the source transactions that
   * begin in the batch (a commit sequence not seen in the previous event), so
   * a transaction split over two batches is counted once; callers that count
   * appended transactions can release that many.
   */
  /**
   * After each batch: `lastCommitTime` is the commit time of its last change and `meanCommitTime` the mean over
   * its changes, both as lag measures them (commit-clock.ts: precise for MariaDB too).
   */
  onApplied?: (info: { count: number; transactions: number; lastSequence: string; lastCommitTime: number; meanCommitTime: number }) => void | Promise<void>;
  /**
   * When a batch was read and its apply begins: `oldestCommitTime` is the lag clock of its first change, the
   * oldest change not yet applied (everything before it is). An apply that makes no progress (a lock held at the
   * destination, a hung connection) stays between this and onApplied.
   */
  onBatch?: (info: { oldestCommitTime: number }) => void;
  /** Called whenever a read found the feed drained: nothing appended is waiting for apply. */
  onDrained?: () => void | Promise<void>;
  /**
   * Called when the feed is drained; true = finish (migration caught up),
   * 'recheck' = not yet, but read again at once rather than after a blocking wait.
   */
  shouldFinish?: () => Promise<boolean | 'recheck'>;
  /** Longest wait of one blocking read of an empty feed, ms. Default 1000. */
  blockMs?: number;
}

export type ApplyOutcome = 'aborted' | 'finished';

/**
 * Batches of at most this many changes go to the destination in one transaction for every lane
 * (Applier.applyWhole) rather than one per lane: at single-row transactions most batches are small, and a
 * transaction per lane doubled the round trips, the socket writes and the destination's commits (issue 12).
 */
const WHOLE_MAX_EVENTS = 1000;

export async function runApply(o: ApplyRunnerOptions): Promise<ApplyOutcome> {
  const lanes = Math.max(1, o.lanes);
  const batchSize = o.batchSize ?? 5000;
  const checkpoints = await Promise.all(Array.from({ length: lanes }, (_, l) => o.applier.readCheckpoint(l)));
  // Read from the lowest lane checkpoint; lanes ahead of it skip what they already hold.
  let since: string | null = null;
  if (checkpoints.every((c) => c !== null)) {
    since = (checkpoints as string[]).reduce((min, c) => (compareSequences(c, min) < 0 ? c : min));
  }
  let prevCommit: string | undefined;
  // What each lane's checkpoint holds, and when it last moved.
  const laneAt: (string | null)[] = [...checkpoints];
  const laneMovedAt: number[] = Array.from({ length: lanes }, () => Date.now());
  const IDLE_LANE_MS = 1000;
  const applyLanes = async (parts: ChangeEvent[][], seq: string, size = 0) => {
    const now = Date.now();
    // A small batch gains nothing from lanes applied side by side: one transaction for all of them.
    if (lanes > 1 && size <= WHOLE_MAX_EVENTS && o.applier.applyWhole) {
      if (parts.every((p, lane) => p.length === 0 && now - laneMovedAt[lane]! < IDLE_LANE_MS)) return;
      await o.applier.applyWhole(parts, seq);
      for (let lane = 0; lane < lanes; lane++) { laneAt[lane] = seq; laneMovedAt[lane] = now; }
      return;
    }
    await Promise.all(parts.map(async (part, lane) => {
      if (part.length === 0 && now - laneMovedAt[lane]! < IDLE_LANE_MS) return;
      await o.applier.applyBatch(part, lane, seq);
      laneAt[lane] = seq; laneMovedAt[lane] = Date.now();
    }));
  };
  const empty = (): ChangeEvent[][] => Array.from({ length: lanes }, () => []);
  // The next batch is read while the current one is applied (the feed read and
  // decoding overlap the destination's writes); `since` moves only after apply.
  const blockMs = o.blockMs ?? 1000;
  const read = (from: string | null, wait = blockMs) => {
    const p = o.feed.readBlocking(from, batchSize, wait, o.signal);
    p.catch(() => undefined);
    return p;
  };
  let next = read(since);
  const TR = process.env.TRIB_TRACE ? (m: string) => process.stderr.write(`[trace ${(performance.now() / 1000).toFixed(3)}] ${m}\n`) : undefined;
  while (!o.signal.aborted) {
    const tw = performance.now();
    const events = await next;
    const ta = performance.now();
    if (o.signal.aborted) break;
    if (events.length === 0) {
      // Drained: lanes that skipped their checkpoint move catch up now.
      if (since !== null && laneAt.some((at) => at !== since)) {
        const behind = laneAt.map((at) => (at === since ? null : []));
        await Promise.all(behind.map(async (part, lane) => {
          if (!part) return;
          await o.applier.applyBatch(part, lane, since!);
          laneAt[lane] = since; laneMovedAt[lane] = Date.now();
        }));
      }
      await o.onDrained?.();
      const finish = o.shouldFinish ? await o.shouldFinish() : false;
      if (finish === true) return 'finished';
      next = read(since, finish === 'recheck' ? 0 : blockMs);
      continue;
    }
    const last = events.at(-1)!;
    o.onBatch?.({ oldestCommitTime: lagClockOf(events[0]!) });
    next = read(last.sequence);
    const wanted = !o.filter && !o.map ? events : events.filter((e) => !o.filter || o.filter(e)).map((e) => (o.map ? o.map(e) : e));
    for (const segment of cutAtDdl(wanted)) {
      const segLast = segment.at(-1)!.sequence;
      if (segment[0]!.op === Operation.Ddl) {
        // A barrier: the DDL alone on lane 0, then every other lane past it.
        await o.applier.applyBatch(segment, 0, segLast);
        laneAt[0] = segLast; laneMovedAt[0] = Date.now();
        await Promise.all(Array.from({ length: lanes - 1 }, async (_, i) => {
          await o.applier.applyBatch([], i + 1, segLast);
          laneAt[i + 1] = segLast; laneMovedAt[i + 1] = Date.now();
        }));
      } else {
        await applyLanes(splitLanes(segment, lanes), segLast, segment.length);
      }
    }
    // Events filtered out still move every lane past them.
    const tailSeq = last.sequence;
    if (!wanted.length || wanted.at(-1)!.sequence !== tailSeq) await applyLanes(empty(), tailSeq);
    since = tailSeq;
    let transactions = 0;
    for (const e of events) if (e.commitSequence !== prevCommit) { transactions++; prevCommit = e.commitSequence; }
    const lastCommitTime = lagClockOf(last);
    const meanCommitTime = meanLagClock(events);
    await o.onApplied?.({ count: wanted.length, transactions, lastSequence: tailSeq, lastCommitTime, meanCommitTime });
    TR?.(`apply n=${events.length} wait=${(ta - tw).toFixed(1)} apply=${(performance.now() - ta).toFixed(1)} lagFromCommit=${Date.now() - lastCommitTime} echo=${JSON.stringify((o.feed as { echoStats?: unknown }).echoStats ?? null)} atOnce=${JSON.stringify((o.applier as { atOnce?: unknown }).atOnce ?? null)}`);
  }
  return 'aborted';
}
