import type { CapturedTransaction, ChangeEvent, SourcePosition } from '../change-event.ts';

export interface FeedBounds {
  /** Oldest sequence still retained ("0.0.0" when nothing was ever written). */
  first: string;
  /** Newest sequence ever written; survives trimming and an empty feed (sentinel). */
  last: string;
  /**
   * The newest changes are the first pieces of a large transaction whose
   * last piece is not appended yet (a capture crashed in between, or is
   * appending it): nothing may be appended between them and the rest.
   */
  openTransaction?: boolean;
}

export interface RetentionPolicy {
  /** Keep at most this many changes (approximate trimming is fine). */
  maxChanges?: number;
  /** Drop changes whose commit time is older than this. */
  maxAgeMs?: number;
  /** Never drop changes after this sequence (e.g. not yet applied by the job's apply task). */
  keepAfter?: string;
}

/** A reader asked for a sequence older than retention. */
export class SnapshotTooOldError extends Error {
  override readonly name = 'SnapshotTooOldError';
  readonly code = 'SNAPSHOT_TOO_OLD';
  constructor(readonly since: string, readonly first: string) {
    super(`changes since ${since} are no longer retained; the oldest retained sequence is ${first}`);
  }
}

/**
 * One ordered, durable, retained stream of changes per capture, named by its
 * job (or environmentId). Appends are atomic per transaction and idempotent:
 * events whose sequence is not above the feed's last one are skipped, so a
 * capture that crashes and re-reads produces no duplicate and no gap.
 */
/** See ChangeFeed.append. */
export interface AppendOptions { generation?: string; countInto?: string }

export interface ChangeFeed {
  readonly name: string;
  /**
   * `opts.generation`: the feed's createdAt the appender knows; when the feed
   * has another one, nothing is written and FeedReplacedError is thrown (checked
   * atomically with the append). `opts.countInto`: a counter (a Redis key) that
   * goes up by one for each whole transaction the append added to (a job's
   * in-flight count, ReplChanBufferSize), with the append where the store can.
   */
  append(tx: CapturedTransaction, opts?: AppendOptions): Promise<number>;
  /** Several whole transactions at once (one round trip where the store can); same result as append() on each. */
  appendMany?(txs: CapturedTransaction[], opts?: AppendOptions): Promise<number>;
  /**
   * Resolves when an apply of this feed running in this process is near enough to take the next append
   * as objects (local-echo.ts, FeedEcho.room); at once when there is none, or it is stuck.
   */
  localRoom?(signal: AbortSignal): Promise<void>;
  /** Bytes of change payload the last append() serialised (for metrics), when the store knows it. */
  readonly lastAppendBytes?: number;
  /** Where the capture continues: the resume position of the last whole transaction appended. */
  resumePosition(): Promise<SourcePosition | null>;
  /** Up to `limit` changes with sequence > `since` (exclusive; null = from the start). Throws SnapshotTooOldError. */
  read(since: string | null, limit: number): Promise<ChangeEvent[]>;
  /** Like read, but waits up to `blockMs` for the first change when none is there. */
  readBlocking(since: string | null, limit: number, blockMs: number, signal?: AbortSignal): Promise<ChangeEvent[]>;
  bounds(): Promise<FeedBounds>;
  /** Apply retention now; returns how many changes were dropped. */
  trim(policy: RetentionPolicy): Promise<number>;
  /** Number of retained changes. */
  length(): Promise<number>;
  /**
   * Mark a gap: the changes after the feed's last one are lost (the source
   * lost the capture's position). Drops every retained change, moves `last`
   * and the trim mark one past the last change ever written, and forgets the
   * resume position, atomically. Readers whose `since` is before the returned
   * gap sequence get SnapshotTooOldError; the capture starts again from a new
   * position, whose sequences are all above the gap.
   */
  markGap(): Promise<string>;
  /** Remove the feed and its sentinel. */
  destroy(): Promise<void>;
}
