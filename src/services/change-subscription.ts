/**
 * One live subscriber of a change feed: a bounded buffer, the async iterator
 * the GraphQL subscription pulls from, and a producer that fills the buffer
 * in one of two ways:
 *
 *   catching up: reads Redis itself after its cursor (replay, or after it fell behind)
 *   attached:    the feed's shared FeedHub hands it the live changes of its scopes
 *
 * The producer reads Redis until the hub has not read past its cursor, then
 * attaches (feed-hub.ts says why that join has no gap and no duplicate); the
 * hub detaches it again when its buffer is full, telling it the last sequence
 * it examined, and it catches up on its own from there.
 *
 * Invariants:
 * - No gap, no duplicate: the cursor only ever moves to the last sequence
 *   examined (by itself or by the hub on its behalf), and every read is
 *   "after the cursor".
 * - Memory is bounded: the buffer never holds more than `bufferEvents`.
 * - A slow subscriber only delays itself: the hub drops it rather than wait.
 *   When the buffer is full and does not drain to half within `stallMs`, the
 *   subscriber is closed: the buffer is dropped and the next pull throws
 *   SubscriberTooSlowError naming the last sequence it delivered, so the
 *   client can resubscribe with `since` = that sequence.
 *
 *   catching up --caught up--> attached --buffer full--> stalled --drained to half--> catching up
 *   stalled --stallMs--> failed (buffer dropped) ; any --return()/close--> ended
 */
import type { ChangeEvent } from '../replication/change-event.ts';
import type { ChangeFeed } from '../replication/feed/change-feed.ts';
import type { FeedHub, HubMember } from './feed-hub.ts';

export interface FeedSubscriptionOptions {
  /** Most events held for a subscriber that has not pulled them yet. Default 10000. */
  bufferEvents?: number;
  /** How long a full buffer may stay above half before the subscriber is closed, ms. Default 10000. */
  stallMs?: number;
  /** Most events read from Redis per round trip. Default 1000. */
  readBatch?: number;
  /** Longest single blocking wait for new changes, ms (re-armed in a loop; the hub's). Default 5000. */
  blockSliceMs?: number;
}

export const SUBSCRIPTION_DEFAULTS: Required<FeedSubscriptionOptions> = { bufferEvents: 10_000, stallMs: 10_000, readBatch: 1000, blockSliceMs: 5000 };

/** The subscriber did not keep up: its buffer stayed full for `stallMs`. */
export class SubscriberTooSlowError extends Error {
  override readonly name = 'SubscriberTooSlowError';
  readonly code = 'SUBSCRIBER_TOO_SLOW';
  constructor(readonly lastDelivered: string | null, readonly bufferEvents: number, readonly stallMs: number) {
    super(`subscriber too slow: ${bufferEvents} changes waited more than ${stallMs} ms to be consumed; the subscription is closed. `
      + `Resubscribe with since=${lastDelivered === null ? '(your last sequence)' : `"${lastDelivered}"`} to continue without a gap.`);
  }
}

/**
 * Fairness: a subscriber with a full buffer is pulled through promises and
 * nextTick callbacks only (graphql-ws awaits each send, and a fast socket
 * write calls back on nextTick), so hundreds of them draining at once never
 * let the event loop turn: timers starved for seconds (BullMQ lock renewals
 * failed and a worker lost its capture task during a 200-subscriber fan-out).
 * A pull that finds the loop has not turned for TURN_MS waits one turn first.
 */
const TURN_MS = 10;
let lastTurn = performance.now();
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => { lastTurn = performance.now(); resolve(); }));
}

export class FeedSubscription implements AsyncIterableIterator<ChangeEvent>, HubMember {
  private readonly opts: Required<FeedSubscriptionOptions>;
  private buffer: ChangeEvent[] = [];
  private head = 0;
  private failure?: Error;
  private ended = false;
  private lastDelivered: string | null;
  private readonly abort = new AbortController();
  private wakeConsumer?: () => void;
  private wakeProducer?: () => void;
  private onDetached?: (r: { cursor: string | null; err?: unknown }) => void;
  private readonly loop: Promise<void>;

  constructor(
    private readonly feed: ChangeFeed,
    private readonly hub: FeedHub,
    since: string | null,
    readonly scopes: ReadonlySet<string>,
    readonly accept: (e: ChangeEvent) => boolean,
    opts: FeedSubscriptionOptions = {},
    /** Maps a producer failure (e.g. SnapshotTooOldError) to what the consumer sees. */
    private readonly mapError: (err: unknown) => Error = (e) => (e instanceof Error ? e : new Error(String(e))),
    private readonly onEnd?: () => void,
  ) {
    this.opts = { ...SUBSCRIPTION_DEFAULTS, ...stripUndefined(opts) };
    for (const k of ['bufferEvents', 'stallMs', 'readBatch', 'blockSliceMs'] as const) {
      if (!Number.isInteger(this.opts[k]) || this.opts[k] < 1) throw new RangeError(`${k} must be a positive integer, got ${this.opts[k]}`);
    }
    this.lastDelivered = since;
    this.abort.signal.addEventListener('abort', () => this.wakeProducer?.(), { once: true });
    this.loop = this.run(since);
  }

  /** Events waiting in the buffer (for tests and metrics). */
  get buffered(): number { return this.buffer.length - this.head; }

  private async run(since: string | null): Promise<void> {
    let cursor = since;
    const signal = this.abort.signal;
    try {
      while (!signal.aborted) {
        if (this.buffered >= this.opts.bufferEvents) {
          const drained = await this.waitForRoom();
          if (signal.aborted) return;
          if (!drained) throw new SubscriberTooSlowError(this.lastDelivered, this.opts.bufferEvents, this.opts.stallMs);
        }
        const detached = new Promise<{ cursor: string | null; err?: unknown }>((resolve) => { this.onDetached = resolve; });
        if (this.hub.attach(this, cursor)) {
          const r = await detached;
          if (signal.aborted) return;
          if (r.err !== undefined) throw r.err;
          cursor = r.cursor;
          continue;
        }
        this.onDetached = undefined;
        // The hub has read past the cursor: catch up from Redis (what the hub read is there, or SNAPSHOT_TOO_OLD).
        const room = this.opts.bufferEvents - this.buffered;
        const events = await this.feed.readBlocking(cursor, Math.min(this.opts.readBatch, room), 100, signal);
        if (signal.aborted || events.length === 0) continue;
        for (const e of events) if (e.scope !== undefined && this.scopes.has(e.scope) && this.accept(e)) this.buffer.push(e);
        cursor = events[events.length - 1]!.sequence;
        this.wake();
      }
    } catch (err) {
      if (signal.aborted) return;
      this.failure = this.mapError(err);
      this.buffer = []; // closed: free the memory now, the client resumes from lastDelivered
      this.head = 0;
      this.wake();
    }
  }

  /** HubMember: takes a live change unless the buffer is full (or the subscription ended). */
  offer(e: ChangeEvent): boolean {
    if (this.ended || this.buffered >= this.opts.bufferEvents) return false;
    this.buffer.push(e);
    return true;
  }

  /** HubMember: a hub read put changes in the buffer. */
  flush(): void { this.wake(); }

  /** HubMember: the hub let go (buffer full, read failure, shutdown). */
  detached(cursor: string | null, err?: unknown): void {
    this.wake(); // it may have been offered changes in the read that detached it
    const d = this.onDetached;
    this.onDetached = undefined;
    d?.({ cursor, err });
  }

  /** Resolves true once the consumer has drained the buffer to half, false after stallMs. */
  private waitForRoom(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { this.wakeProducer = undefined; resolve(false); }, this.opts.stallMs);
      this.wakeProducer = () => { clearTimeout(timer); this.wakeProducer = undefined; resolve(true); };
    });
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = undefined;
    w?.();
  }

  async next(): Promise<IteratorResult<ChangeEvent>> {
    for (;;) {
      if (this.ended) return { value: undefined, done: true };
      if (this.buffered > 0 && performance.now() - lastTurn > TURN_MS) await yieldToEventLoop();
      if (this.ended) return { value: undefined, done: true };
      if (this.buffered > 0) {
        const value = this.buffer[this.head]!;
        this.head++;
        if (this.head === this.buffer.length) { this.buffer = []; this.head = 0; }
        else if (this.head > 4096 && this.head * 2 > this.buffer.length) { this.buffer = this.buffer.slice(this.head); this.head = 0; }
        this.lastDelivered = value.sequence;
        if (this.wakeProducer && this.buffered <= this.opts.bufferEvents / 2) this.wakeProducer();
        return { value, done: false };
      }
      if (this.failure) {
        const f = this.failure;
        this.finish();
        throw f;
      }
      await new Promise<void>((resolve) => { this.wakeConsumer = resolve; });
    }
  }

  async return(): Promise<IteratorResult<ChangeEvent>> {
    this.finish();
    await this.loop.catch(() => undefined);
    return { value: undefined, done: true };
  }

  async throw(err?: unknown): Promise<IteratorResult<ChangeEvent>> {
    this.finish();
    throw err;
  }

  /** Ends the subscription from the server side (shutdown): pending and later pulls report done. */
  close(): void {
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.abort.abort();
    this.hub.detach(this);
    this.detached(null);
    this.buffer = [];
    this.head = 0;
    this.wake();
    this.onEnd?.();
  }

  [Symbol.asyncIterator](): this { return this; }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
