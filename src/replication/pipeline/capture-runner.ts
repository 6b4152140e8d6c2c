/**
 * Capture -> feed. Streams committed transactions from a CaptureSource into a
 * ChangeFeed; the capture acknowledges a position to the source only after
 * the feed append resolved (the handler returned), so a crash re-reads and
 * the feed's idempotent append drops what it already has.
 *
 * Backpressure: `waitForRoom` is awaited before each append (ReplChanBufferSize:
 * the consumer is too far behind). Rate limits: changes/s and bytes/s.
 */
import type { CapturedTransaction, SourcePosition } from '../change-event.ts';
import type { CaptureSource } from '../capture/capture-source.ts';
import type { ChangeFeed } from '../feed/change-feed.ts';
import { comparePositions } from '../position.ts';
import { RateLimiter } from './rate-limiter.ts';

export interface CaptureRunnerOptions {
  capture: CaptureSource;
  feed: ChangeFeed;
  signal: AbortSignal;
  /** Changes per second (0 = unlimited). */
  msgsLimit?: number;
  /** Bytes per second (0 = unlimited). */
  bytesLimit?: number;
  waitForRoom?: (signal: AbortSignal) => Promise<void>;
  onAppended?: (info: { tx: CapturedTransaction; added: number; bytes: number }) => void;
  /** Migration: stop once the stream reached this position (or idled `idleStopMs` after `stopAt` is known). */
  stopAt?: () => SourcePosition | undefined;
  idleStopMs?: number;
  /** Where the stream starts: a migration whose target is not after it has nothing left to read. */
  from?: SourcePosition;
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
    await o.capture.run(async (captured) => {
      lastTxAt = Date.now();
      const tx = o.transform ? o.transform(captured) : captured;
      await msgs.take(tx.events.length, inner.signal);
      // Serialising only to count bytes is not free: do it only when a byte limit asks for it.
      const size = byteLimited ? tx.events.reduce((n, e) => n + JSON.stringify(e.after ?? e.before ?? {}).length, 0) : 0;
      if (byteLimited) await bytes.take(size, inner.signal);
      if (o.waitForRoom) await o.waitForRoom(inner.signal);
      const added = await o.feed.append(tx);
      o.onAppended?.({ tx, added, bytes: o.feed.lastAppendBytes ?? size });
      lastTxAt = Date.now();
      const target = o.stopAt?.();
      if (!tx.partial && target && comparePositions(tx.resume, target) >= 0) { reached = true; inner.abort(); }
    }, inner.signal);
  } finally {
    if (idleTimer) clearInterval(idleTimer);
    o.signal.removeEventListener('abort', onOuterAbort);
  }
  return reached ? 'reached-target' : 'aborted';
}
