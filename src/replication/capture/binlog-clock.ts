/**
 * When the source's binlog reached a position, on this process's clock: the
 * capture's side connection reads the binlog end (SHOW MASTER STATUS) every
 * BINLOG_CLOCK_MS. A commit ending at position P was written after the last
 * sample below P was taken and before the first sample at or above P
 * returned, whatever the capture's own delay in reading the binlog: so a
 * backlogged capture (one that receives a commit late) still knows when it
 * committed, to within a sampling interval. Used for lag only
 * (commit-clock.ts); no sample (no privilege, a dead connection) just means
 * no bracket.
 */
import type mysql from 'mysql2/promise';
import type { Logger } from '../logger.ts';
import { binlogFileNumber } from '../sequence.ts';
import { binlogEnd } from './mysql-connection.ts';

export const BINLOG_CLOCK_MS = 50;
/** Samples kept while the capture is behind (10 minutes at 20 a second); older ones are dropped. */
const MAX_SAMPLES = 12_000;

interface Sample { file: bigint; pos: number; sentAt: number; receivedAt: number }

export interface CommitBracket {
  /** The commit was after this (the last sample below its position was taken then). */
  after?: number;
  /** The commit was before this (the first sample at or above its position had returned by then). */
  before?: number;
}

/** The sample was taken before the binlog reached file `n`, offset `pos`. */
function below(s: Sample, n: bigint, pos: number): boolean {
  return s.file < n || (s.file === n && s.pos < pos);
}

export class BinlogClock {
  private readonly samples: Sample[] = [];
  private head = 0;
  private timer?: NodeJS.Timeout;
  private db?: mysql.Connection;
  private busy = false;
  private stopped = false;

  constructor(private readonly open: () => Promise<mysql.Connection>, private readonly log: Logger, private readonly intervalMs = BINLOG_CLOCK_MS) {}

  start(): void {
    this.timer = setInterval(() => { void this.sample(); }, this.intervalMs);
    this.timer.unref?.();
  }

  private async sample(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      if (!this.db) {
        const db = await this.open();
        if (this.stopped) { db.end().catch(() => undefined); return; }
        this.db = db;
      }
      const sentAt = Date.now();
      const end = await binlogEnd(this.db);
      const receivedAt = Date.now();
      if (!end) return;
      this.samples.push({ file: binlogFileNumber(end.file), pos: end.pos, sentAt, receivedAt });
      if (this.samples.length - this.head > MAX_SAMPLES) this.head++;
      if (this.head > 1024 && this.head * 2 > this.samples.length) { this.samples.splice(0, this.head); this.head = 0; }
    } catch (err) {
      // Lag then falls back to the capture's receipt time.
      this.log.debug({ err: (err as Error).message }, 'binlog clock: sampling the binlog end failed; it stops');
      this.stop();
    } finally {
      this.busy = false;
    }
  }

  /**
   * The bracket of a commit ending at `file`/`pos`. Positions are asked in
   * binlog order: samples before the last one below `pos` are dropped.
   */
  bracket(file: string, pos: number): CommitBracket {
    const n = binlogFileNumber(file);
    while (this.head + 1 < this.samples.length && below(this.samples[this.head + 1]!, n, pos)) this.head++;
    const first = this.samples[this.head];
    if (!first) return {};
    if (!below(first, n, pos)) return { before: first.receivedAt };
    const next = this.samples[this.head + 1];
    return next ? { after: first.sentAt, before: next.receivedAt } : { after: first.sentAt };
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const db = this.db;
    this.db = undefined;
    db?.end().catch(() => undefined);
  }
}
