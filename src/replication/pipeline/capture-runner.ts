/**
 * Capture -> feed. Streams committed transactions from a CaptureSource into a
 * ChangeFeed; the capture acknowledges a position to the source only after
 * the feed append resolved (the handler returned), so a crash re-reads and
 * the feed's idempotent append drops what it already has.
 *
 * Backpressure: `waitForRoom` is awaited before each append (ReplChanBufferSize:
 * the consumer is too far behind), then the feed's `localRoom` (an apply in
 * this process that is moving gets its next changes as objects). Rate limits: changes/s and bytes/s.
 */
import type { CapturedTransaction, SourcePosition } from '../change-event.ts';
import type { CaptureSource } from '../capture/capture-source.ts';
import type { ChangeFeed } from '../feed/change-feed.ts';
import { comparePositions } from '../position.ts';
import { RateLimiter } from './rate-limiter.ts';
import type { AppendLock } from './incremental-snapshot.ts';

export interface CaptureRunnerOptions {
  capture: CaptureSource;
  feed: ChangeFeed;
  signal: AbortSignal;
  /** Changes per second (0 = unlimited). */
  msgsLimit?: number;
  /** Bytes per second (0 = unlimited). */
  bytesLimit?: number;
  /** Resolves when there is room for another transaction; with a number, how many transactions there is room for. */
  waitForRoom?: (signal: AbortSignal) => Promise<void | number>;
  onAppended?: (info: { tx: CapturedTransaction; added: number; bytes: number }) => void;
  /** Migration: stop once the stream reached this position (or idled `idleStopMs` after `stopAt` is known). */
  stopAt?: () => SourcePosition | undefined;
  idleStopMs?: number;
  /** Where the stream starts: a migration whose target is not after it has nothing left to read. */
  from?: SourcePosition;
  /**
   * Incremental snapshots (incremental-snapshot.ts): appends run under this
   * lock, through `filter` first, and `observe` sees each appended transaction.
   */
  snapshotter?: { lock: AppendLock; filter(tx: CapturedTransaction): CapturedTransaction; observe(tx: CapturedTransaction): void };
  /** Applied to each transaction before it is appended (a job's column and row controls). */
  transform?: (tx: CapturedTransaction) => CapturedTransaction;
}

export type CaptureOutcome = 'aborted' | 'reached-target';

export async function runCapture(o: CaptureRunnerOptions): Promise<CaptureOutcome> {
  const target0 = o.stopAt?.();
  // Nothing was written since the snapshot: stop at once instead of idling `idleStopMs` first.
  const comparable = (p: SourcePosition) => p.kind !== 'mysql' || p.file !== '';
  if (target0 && o.from && o.from.kind === target0.kind && comparable(o.from) && comparable(target0) && comparePositions(o.from, target0) >= 0) return 'reached-target';
  const msgs = new RateLimiter(o.msgsLimit ?? 0);
  const bytes = new RateLimiter(o.bytesLimit ?? 0);
  const byteLimited = (o.bytesLimit ?? 0) > 0;
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort();
  o.signal.addEventListener('abort', onOuterAbort, { once: true });
  let reached = false;
  let lastTxAt = Date.now();
  let idleTimer: NodeJS.Timeout | undefined;
  const idleStopMs = o.idleStopMs ?? 3000;
  if (o.stopAt) {
    // With no transaction arriving, a caught-up stream has nothing left below the target.
    idleTimer = setInterval(() => {
      if (o.stopAt!() && Date.now() - lastTxAt > idleStopMs) { reached = true; inner.abort(); }
    }, 500);
  }
  try {
    const rateLimited = (o.msgsLimit ?? 0) > 0 || byteLimited;
    const limits = async (txs: CapturedTransaction[]) => {
      const n = txs.reduce((k, t) => k + t.events.length, 0);
      await msgs.take(n, inner.signal);
      // Serialising only to count bytes is not free: do it only when a byte limit asks for it.
      const size = byteLimited ? txs.reduce((k, t) => k + t.events.reduce((m, e) => m + JSON.stringify(e.after ?? e.before ?? {}).length, 0), 0) : 0;
      if (byteLimited) await bytes.take(size, inner.signal);
      return size;
    };
    const appended = (tx: CapturedTransaction, added: number, size: number) => {
      o.onAppended?.({ tx, added, bytes: size });
      lastTxAt = Date.now();
      const target = o.stopAt?.();
      if (!tx.partial && target && comparePositions(tx.resume, target) >= 0) { reached = true; inner.abort(); }
    };
    const trace = process.env.TRIB_TRACE ? (n: number, t0: number, tx: CapturedTransaction, k: number) => process.stderr.write(`[trace ${(performance.now() / 1000).toFixed(3)}] capture n=${n} txs=${k} append=${(performance.now() - t0).toFixed(1)} sinceCommit=${Date.now() - (tx.commitEstimate ?? tx.commitTime)}\n`) : undefined;
    const shape = (tx: CapturedTransaction) => (o.transform ? o.transform(tx) : tx);
    /** One transaction: limits, room, append. */
    const one = async (tx: CapturedTransaction, roomChecked = false) => {
      lastTxAt = Date.now();
      const size = await limits([tx]);
      if (!roomChecked && o.waitForRoom) await o.waitForRoom(inner.signal);
      if (!roomChecked) await o.feed.localRoom?.(inner.signal);
      const t0 = performance.now();
      const snap = o.snapshotter;
      const added = snap
        ? await snap.lock.run(async () => { const kept = snap.filter(tx); const n = await o.feed.append(kept); snap.observe(kept); return n; })
        : await o.feed.append(tx);
      trace?.(tx.events.length, t0, tx, 1);
      appended(tx, added, o.feed.lastAppendBytes ?? size);
    };
    /** Several transactions in one append; the caller made sure of the room for all of them. */
    const many = async (txs: CapturedTransaction[]) => {
      lastTxAt = Date.now();
      const t0 = performance.now();
      const snap = o.snapshotter;
      const added = snap
        ? await snap.lock.run(async () => {
          const kept = txs.map((tx) => snap.filter(tx));
          const n = await o.feed.appendMany!(kept);
          for (const k of kept) snap.observe(k);
          return n;
        })
        : await o.feed.appendMany!(txs);
      trace?.(txs.reduce((k, t) => k + t.events.length, 0), t0, txs.at(-1)!, txs.length);
      // Each transaction's own count: the feed reports the total, and what it held already (after a
      // restart) is a prefix of the batch, so the count is the batch's tail.
      let left = added;
      const mine = txs.map(() => 0);
      for (let i = txs.length - 1; i >= 0 && left > 0; i--) { mine[i] = Math.min(left, txs[i]!.events.length); left -= mine[i]!; }
      txs.forEach((tx, i) => appended(tx, mine[i]!, i === txs.length - 1 ? o.feed.lastAppendBytes ?? 0 : 0));
    };
    await o.capture.run(async (captured) => one(shape(captured)), inner.signal, o.feed.appendMany ? {
      // Small transactions already received go to the feed together: one round trip for all of them, within
      // the room ReplChanBufferSize leaves; rate limits (MsgsLimit, BytesLimit) take them one at a time.
      onBatch: async (captured) => {
        const txs = captured.map(shape);
        for (let i = 0; i < txs.length && !inner.signal.aborted;) {
          if (rateLimited) { await one(txs[i]!); i++; continue; }
          const room = o.waitForRoom ? await o.waitForRoom(inner.signal) : undefined;
          await o.feed.localRoom?.(inner.signal);
          const n = Math.max(1, Math.min(txs.length - i, typeof room === 'number' ? room : Infinity));
          const part = txs.slice(i, i + n);
          i += n;
          if (part.length === 1) await one(part[0]!, true);
          else await many(part);
        }
      },
    } : undefined);
  } finally {
    if (idleTimer) clearInterval(idleTimer);
    o.signal.removeEventListener('abort', onOuterAbort);
  }
  return reached ? 'reached-target' : 'aborted';
}
