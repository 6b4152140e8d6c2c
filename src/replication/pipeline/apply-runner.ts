/**
 * Feed -> destination. Reads the feed from the lowest lane checkpoint, splits
 * each batch into ParallelWorkers lanes by primary-key hash and applies the
 * lanes concurrently; each lane's rows and checkpoint commit in one
 * destination transaction (the applier skips events at or below a lane's
 * checkpoint, so a replay after a crash neither duplicates nor loses). DDL is
 * a barrier: the batch is cut there and the DDL applied alone, then every
 * lane's checkpoint moves past it.
 */
import type { ChangeEvent } from '../change-event.ts';
import type { Applier } from '../apply/applier.ts';
import { cutAtDdl, splitLanes } from '../apply/lanes.ts';
import type { ChangeFeed } from '../feed/change-feed.ts';
import { compareSequences } from '../sequence.ts';
import { Operation } from '../change-event.ts';

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
  onApplied?: (info: { count: number; transactions: number; lastSequence: string; lastCommitTime: number }) => void | Promise<void>;
  /** Called whenever a read found the feed drained: nothing appended is waiting for apply. */
  onDrained?: () => void | Promise<void>;
  /** Called when the feed is drained; true = finish (migration caught up). */
  shouldFinish?: () => Promise<boolean>;
}

export type ApplyOutcome = 'aborted' | 'finished';

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
  // The next batch is read while the current one is applied (the feed read and
  // decoding overlap the destination's writes); `since` moves only after apply.
  const read = (from: string | null) => {
    const p = o.feed.readBlocking(from, batchSize, 1000, o.signal);
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
      await o.onDrained?.();
      if (o.shouldFinish && (await o.shouldFinish())) return 'finished';
      next = read(since);
      continue;
    }
    const last = events.at(-1)!;
    next = read(last.sequence);
    const wanted = events.filter((e) => !o.filter || o.filter(e)).map((e) => (o.map ? o.map(e) : e));
    for (const segment of cutAtDdl(wanted)) {
      const segLast = segment.at(-1)!.sequence;
      if (segment[0]!.op === Operation.Ddl) {
        await o.applier.applyBatch(segment, 0, segLast);
        await Promise.all(Array.from({ length: lanes - 1 }, (_, i) => o.applier.applyBatch([], i + 1, segLast)));
      } else {
        const parts = splitLanes(segment, lanes);
        await Promise.all(parts.map((part, lane) => o.applier.applyBatch(part, lane, segLast)));
      }
    }
    // Events filtered out still move every lane past them.
    const tailSeq = last.sequence;
    if (!wanted.length || wanted.at(-1)!.sequence !== tailSeq) {
      await Promise.all(Array.from({ length: lanes }, (_, l) => o.applier.applyBatch([], l, tailSeq)));
    }
    since = tailSeq;
    let transactions = 0;
    for (const e of events) if (e.commitSequence !== prevCommit) { transactions++; prevCommit = e.commitSequence; }
    await o.onApplied?.({ count: wanted.length, transactions, lastSequence: tailSeq, lastCommitTime: last.commitTime });
    TR?.(`apply n=${events.length} wait=${(ta - tw).toFixed(1)} apply=${(performance.now() - ta).toFixed(1)} lagFromCommit=${Date.now() - last.commitTime}`);
  }
  return 'aborted';
}
