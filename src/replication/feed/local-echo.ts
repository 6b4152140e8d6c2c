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
 * once the reader has passed it, and the oldest go first past
 * MAX_HELD_EVENTS, so a lagging apply costs bounded memory and reads the rest
 * from Redis.
 */
import { randomBytes } from 'node:crypto';
import type { ChangeEvent } from '../change-event.ts';
import { compareStreamIds } from './feed-keys.ts';

/** This process's mark on the entries it appended while an apply of their feed was watching. */
export const ECHO_TOKEN = randomBytes(8).toString('hex');

/**
 * Events held per feed at most: about one apply read. Held events live until the apply passes them,
 * so in a bulk catch-up they survive young-generation collections; past this much lag the rest
 * comes from Redis (A/B in docs/benchmarks.md: held without bound, the scavenges ate the saving).
 */
export const MAX_HELD_EVENTS = 5_000;

export interface EchoPiece {
  /** Stream id of the piece's first change (the entry's `f`). */
  first: string;
  events: ChangeEvent[];
  /** The feed's createdAt when it was appended. */
  generation: string;
}

class FeedEcho {
  readers = 0;
  held = 0;
  /** By entry id, in append (= id) order. */
  readonly pieces = new Map<string, EchoPiece>();

  private newestId: string | undefined;
  private newestGeneration: string | undefined;

  hold(id: string, piece: EchoPiece): void {
    // Ids only grow within a generation; anything else (a feed created again) starts over.
    if (this.newestId !== undefined && (compareStreamIds(id, this.newestId) <= 0 || this.newestGeneration !== piece.generation)) this.clear();
    this.newestId = id;
    this.newestGeneration = piece.generation;
    this.pieces.set(id, piece);
    this.held += piece.events.length;
    for (const [oldId, old] of this.pieces) {
      if (this.held <= MAX_HELD_EVENTS || oldId === id) break;
      this.pieces.delete(oldId);
      this.held -= old.events.length;
    }
  }

  /** Pieces whose last change is at or below `id` are behind the reader. */
  dropThrough(id: string): void {
    for (const [pid, p] of this.pieces) {
      if (compareStreamIds(pid, id) > 0) break;
      this.pieces.delete(pid);
      this.held -= p.events.length;
    }
  }

  range(): [string, string] | undefined {
    const first = this.pieces.keys().next();
    if (first.done) return undefined;
    return [first.value, this.newestId!];
  }

  clear(): void { this.pieces.clear(); this.held = 0; this.newestId = undefined; this.newestGeneration = undefined; }
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
