/**
 * Local echo: a capture and the apply of the same job often run in one
 * process (`npm start`, or a worker that took both tasks). The apply then
 * read back from Redis, and decoded, the very pieces this process had just
 * encoded: about a fifth of the process's CPU per change went to the reply,
 * its Buffer-to-string conversion, JSON.parse and rebuilding the events
 * (issue 12 profile, docs/benchmarks.md).
 *
 * With an apply of the feed registered here (`watchEcho`), the capture keeps
 * the events of each piece it appended (only pieces the append script
 * reports as added in full, and only with the feed's generation known), and
 * marks their stream entries with this process's token (field `o`). The
 * apply's read passes the token and the range of ids it holds; the read
 * script leaves out the payload of exactly those entries (same token, id in
 * range) and returns the rest as before. Redis stays the only record: every
 * entry is still written in full, and a piece this process does not hold
 * (evicted, appended by another process, lost to a restart: another token)
 * arrives with its payload or is fetched again. The decision is per entry,
 * so a change appended by another process can never be skipped.
 *
 * Held events are the capture's own objects, handed to the apply as they
 * are (nothing on the apply path writes to an event). A piece is dropped
 * once the reader has passed it. Past MAX_HELD_EVENTS the oldest pieces keep
 * only their entry text (the JSON the append wrote, a flat string the garbage
 * collector never walks), which the apply decodes as it would Redis's reply,
 * without the reply; past MAX_HELD_TEXT characters of text the oldest go, and
 * a lagging apply reads the rest from Redis. Memory stays bounded either way.
 */
import { randomBytes } from 'node:crypto';
import type { ChangeEvent } from '../change-event.ts';
import { compareStreamIds } from './feed-keys.ts';

/** This process's mark on the entries it appended while an apply of their feed was watching. */
export const ECHO_TOKEN = randomBytes(8).toString('hex');

/**
 * Events held per feed at most: two apply reads, as much as ECHO_ROOM lets a capture in this process
 * run ahead of its moving apply. Held events live until the apply passes them, so they survive
 * young-generation collections; past this much lag (an apply elsewhere busy, or stuck) the oldest
 * keep only their text, then come from Redis (A/B in docs/benchmarks.md: held without bound, the
 * scavenges ate the saving; 20,000 with the room at 20,000 was no faster than 10,000). Two append pieces
 * (APPEND_PIECE_EVENTS) above ECHO_ROOM: the capture checks the room before a transaction, so a capture at
 * the room still appends one, and its pieces must not turn the oldest held ones into text that the apply
 * parses again a moment later (issue 12 profile: encodePiece and parsePiece of held pieces).
 */
export const MAX_HELD_EVENTS = 12_000;

/**
 * A capture in this process waits while its apply (moving, in this process) has this many changes held
 * and not yet read: see FeedEcho.room. One apply read ahead of the read the apply prefetches.
 */
export const ECHO_ROOM = 10_000;

/** An apply that has not read for this long is not waited for (a destination down, a long batch). */
export const ECHO_STALL_MS = 1000;

/**
 * Characters of entry text held per feed at most, past the held events (16 Mi characters: 16-32 MiB).
 * The bulk bench's backlog of 200,000 changes is about 30 Mi characters: the newest half stays.
 */
export const MAX_HELD_TEXT = 16 * 2 ** 20;

export interface EchoPiece {
  /** Stream id of the piece's first change (the entry's `f`). */
  first: string;
  /**
   * The feed's last id when the piece was appended (the append script's lastId): no entry lies between it and
   * the piece, so a reader at `prev` reads this piece next (FeedEcho.chain).
   */
  prev: string;
  /** The changes, while the piece is among the newest MAX_HELD_EVENTS; undefined once only `text` is kept. */
  events: ChangeEvent[] | undefined;
  /** The entry's payload as appended (its field `b`): made by `toText` when the piece lets its events go. */
  text: string | undefined;
  /** Makes `text` again from the events (the same encoding the append wrote). */
  toText: (() => string) | undefined;
  /** The entry's commit estimate (its field `r`), if any. */
  estimate: number | undefined;
  /** How many changes the piece holds. */
  count: number;
  /** The feed's createdAt when it was appended. */
  generation: string;
}

class FeedEcho {
  readers = 0;
  /** Changes held as objects. */
  held = 0;
  /** Characters held as text. */
  heldText = 0;
  /** Changes held as text. */
  heldTextChanges = 0;
  /** When the apply last read (dropped what it passed), ms. */
  private lastReadAt = Date.now();
  private waiters: (() => void)[] = [];
  /** Pieces holding their objects, by entry id in append (= id) order: the newest. */
  private readonly objects = new Map<string, EchoPiece>();
  /** Pieces holding text only, by entry id in append order: all older than those in `objects`. */
  private readonly texts = new Map<string, EchoPiece>();

  private newestId: string | undefined;
  /** When the capture in this process last held a piece, ms. */
  private lastHeldAt = 0;
  private newestGeneration: string | undefined;

  hold(id: string, piece: EchoPiece): void {
    // Ids only grow within a generation; anything else (a feed created again) starts over.
    if (this.newestId !== undefined && (compareStreamIds(id, this.newestId) <= 0 || this.newestGeneration !== piece.generation)) this.clear();
    this.newestId = id;
    this.newestGeneration = piece.generation;
    this.lastHeldAt = Date.now();
    this.objects.set(id, piece);
    this.held += piece.count;
    // Oldest first: objects become text past MAX_HELD_EVENTS (the newest piece keeps them), text goes past MAX_HELD_TEXT.
    while (this.held > MAX_HELD_EVENTS && this.objects.size > 1) {
      const [oldId, old] = this.objects.entries().next().value as [string, EchoPiece];
      this.objects.delete(oldId);
      this.held -= old.count;
      old.text ??= old.toText!();
      old.toText = undefined;
      old.events = undefined;
      this.texts.set(oldId, old);
      this.heldText += old.text.length;
      this.heldTextChanges += old.count;
    }
    while (this.heldText > MAX_HELD_TEXT && this.texts.size > 0) {
      const [oldId, old] = this.texts.entries().next().value as [string, EchoPiece];
      this.texts.delete(oldId);
      this.heldText -= old.text!.length;
      this.heldTextChanges -= old.count;
    }
  }

  /**
   * Resolves once the apply has read enough that at most `limit` changes wait held, or once it has not
   * read for ECHO_STALL_MS (it is stuck: the capture goes on into Redis, as without an apply here).
   *
   * Why: capture and apply share this process's one thread. A capture running far ahead of its apply
   * does no more work per second, but pushes the apply off the held objects onto text and Redis, which
   * it must parse again (about a seventh of the process in the apply bench's catch-up). Waiting here
   * leaves the backlog in the source's log, as native replication does, and ReplChanBufferSize still
   * bounds the feed's backlog whenever the apply is elsewhere or stuck.
   */
  async room(limit: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.readers > 0 && this.held + this.heldTextChanges > limit && Date.now() - this.lastReadAt < ECHO_STALL_MS) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ECHO_STALL_MS);
        function done() { clearTimeout(timer); resolve(); }
        this.waiters.push(done);
      });
    }
  }

  private wake(): void {
    const w = this.waiters;
    if (w.length === 0) return;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The held piece whose entry id is `id`. */
  get(id: string): EchoPiece | undefined {
    return this.objects.get(id) ?? this.texts.get(id);
  }

  /** Forgets the piece `id` (tests: memory lost it while Redis still marks it as this process's). */
  lose(id: string): void {
    const p = this.objects.get(id);
    if (p) { this.objects.delete(id); this.held -= p.count; return; }
    const t = this.texts.get(id);
    if (t) { this.texts.delete(id); this.heldText -= t.text!.length; this.heldTextChanges -= t.count; }
  }

  /** Entry ids held, oldest first. */
  ids(): string[] {
    return [...this.texts.keys(), ...this.objects.keys()];
  }

  /** Pieces whose last change is at or below `id` are behind the reader. */
  dropThrough(id: string): void {
    this.lastReadAt = Date.now();
    this.drop(id);
    this.wake();
  }

  private drop(id: string): void {
    for (const [pid, p] of this.texts) {
      if (compareStreamIds(pid, id) > 0) return;
      this.texts.delete(pid);
      this.heldText -= p.text!.length;
      this.heldTextChanges -= p.count;
    }
    for (const [pid, p] of this.objects) {
      if (compareStreamIds(pid, id) > 0) return;
      this.objects.delete(pid);
      this.held -= p.count;
    }
  }

  /**
   * The held pieces a reader at `since` reads next, in order, as long as each follows the one before it in the
   * feed (its `prev` is that piece's id) and until they hold `limit` changes; undefined when the oldest held
   * piece is not the next entry after `since`. Every piece was appended in full by this process's append script,
   * which adds an entry only above the feed's last id: no other entry can lie between two linked pieces, so
   * these are exactly the feed's next entries (the caller still checks the feed's generation and trim point).
   * Call dropThrough(since) first.
   */
  chain(since: string, limit: number): [string, EchoPiece][] | undefined {
    const out: [string, EchoPiece][] = [];
    let count = 0;
    let at: string | undefined;
    for (const map of [this.texts, this.objects]) {
      for (const [id, p] of map) {
        if (at === undefined) {
          // The reader is at or past `prev` and before the piece's end: nothing lies between (a piece is added whole, above the last id).
          const next = compareStreamIds(p.prev, since) <= 0 && compareStreamIds(since, id) < 0;
          if (!next) return undefined;
        } else if (p.prev !== at) {
          return out;
        }
        out.push([id, p]);
        at = id;
        // As the read script counts: a piece holding `since` counts as one change.
        count += compareStreamIds(p.first, since) <= 0 ? 1 : p.count;
        if (count >= limit) return out;
      }
    }
    return out.length ? out : undefined;
  }

  /** Appends of this process's capture sent and not yet answered (and held). */
  appending = 0;
  private settledWaiters: (() => void)[] = [];

  appendStarted(): void {
    this.appending++;
  }

  /** The append answered, and its pieces were held if they are to be. */
  appendSettled(): void {
    if (--this.appending > 0) return;
    const w = this.settledWaiters;
    this.settledWaiters = [];
    for (const f of w) f();
  }

  /**
   * Resolves once no append of this process's is in flight (at most ECHO_STALL_MS). A reader woken by Redis for an
   * entry this process appended can get there before the append's own answer, which arrives on another connection:
   * it then waits for that answer and takes the piece from memory instead of reading it back from Redis.
   */
  appendsSettled(): Promise<void> {
    if (this.appending === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ECHO_STALL_MS);
      function done(): void { clearTimeout(timer); resolve(); }
      this.settledWaiters.push(done);
    });
  }

  /**
   * True when this process's capture is appending to the feed (it held a piece within ECHO_STALL_MS) and has
   * appended nothing after `id`: a reader at `id` then has nothing of this process's to read yet, so it can
   * wait for the next append instead of asking Redis first (RedisChangeFeed.readBlocking). Only a hint: the
   * wait itself returns at once when the feed holds anything after `id`, whoever appended it.
   */
  nothingAfter(id: string): boolean {
    return this.newestId !== undefined && compareStreamIds(this.newestId, id) <= 0 && Date.now() - this.lastHeldAt < ECHO_STALL_MS;
  }

  range(): [string, string] | undefined {
    const first = this.texts.size > 0 ? this.texts.keys().next() : this.objects.keys().next();
    if (first.done) return undefined;
    return [first.value, this.newestId!];
  }

  clear(): void {
    this.objects.clear(); this.texts.clear(); this.held = 0; this.heldText = 0; this.heldTextChanges = 0; this.newestId = undefined; this.newestGeneration = undefined;
    this.wake();
  }
}

const feeds = new Map<string, FeedEcho>();

/** The echo of the feed stored under `streamKey`, while an apply in this process watches it. */
export function echoOf(streamKey: string): FeedEcho | undefined {
  const e = feeds.get(streamKey);
  return e && e.readers > 0 ? e : undefined;
}

/** An apply of the feed starts reading in this process; call the returned function when it stops. */
export function watchEcho(streamKey: string): () => void {
  let e = feeds.get(streamKey);
  if (!e) { e = new FeedEcho(); feeds.set(streamKey, e); }
  e.readers++;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    e.readers--;
    if (e.readers === 0) { e.clear(); feeds.delete(streamKey); }
  };
}

export type { FeedEcho };
