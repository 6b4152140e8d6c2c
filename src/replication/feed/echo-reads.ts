/**
 * The reads of RedisChangeFeed that take pieces from the local echo
 * (local-echo.ts) instead of Redis: a read entirely from memory while the
 * held pieces follow one another in the feed (readHeld), and the held
 * pieces put in for the payload-less entries the read script returns
 * (fillEchoed). Under TRIB_ECHO_VERIFY=1 (the test suites) every piece
 * taken from memory is compared with what Redis holds.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Redis } from 'ioredis';
import type { ChangeEvent } from '../change-event.ts';
import type { FeedKeys } from './feed-keys.ts';
import { echoOf, type EchoPiece, type FeedEcho } from './local-echo.ts';

/**
 * A stream entry as a read returns it: field names and values as text, but a piece (`b`) as Redis's bytes
 * when it was read as bytes (binary pieces, feed-codec-wire.ts, are not text). See entriesOf.
 */
export type StreamEntry = [id: string, fields: (string | Buffer)[]];

/**
 * Entries of a reply read as bytes (XRANGE, the read script): ids, field names and values as text but for the
 * pieces, which stay bytes. A reply read as text would have turned a binary piece's bytes into replacement
 * characters.
 */
export function entriesOf(reply: unknown): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (const [id, fields] of reply as [Buffer, Buffer[]][]) {
    const f: (string | Buffer)[] = new Array(fields.length);
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]!.toString('latin1');
      f[i] = name;
      f[i + 1] = name === 'b' ? fields[i + 1]! : fields[i + 1]!.toString('utf8');
    }
    out.push([id.toString('latin1'), f]);
  }
  return out;
}

const ECHO_VERIFY = process.env.TRIB_ECHO_VERIFY === '1';

/** Held pieces matched to the payload-less entries of the read in progress (keyed by the entry's field array). */
const echoed = new WeakMap<(string | Buffer)[], { first: string; events: ChangeEvent[] }>();

/** The held events standing for an entry's fields, if the entry is one of this process's pieces. */
export function echoedEvents(fields: (string | Buffer)[]): { first: string; events: ChangeEvent[] } | undefined {
  return echoed.get(fields);
}

/** A field's value as text (a piece read as bytes is decoded as UTF-8: use it for text fields). */
export function fieldOf(fields: (string | Buffer)[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === name) { const v = fields[i + 1]!; return typeof v === 'string' ? v : v.toString('utf8'); }
  }
  return undefined;
}

export interface EchoReadsOptions {
  redis: Redis;
  keys: FeedKeys;
  /** The feed's name, for messages. */
  name: string;
  /** The feed's decoder: entries -> events after `sinceId` (held entries taken as they are). */
  decode: (entries: StreamEntry[], sinceId: string | null) => Promise<ChangeEvent[]>;
  /** The read script without echo arguments: every entry after `sinceId` in full, until `limit` changes. */
  readStored: (sinceId: string, limit: number) => Promise<StreamEntry[]>;
}

export class EchoReads {
  /** Pieces taken from memory through the read script, fetched again because memory no longer held them, read without the script. */
  readonly stats = { taken: 0, refetched: 0, chained: 0 };

  constructor(private readonly o: EchoReadsOptions) {}

  /**
   * The changes after `sinceId` from the held pieces alone, when they are the feed's next entries
   * (FeedEcho.chain), without a word to Redis: the read script would bring every entry's payload into Lua only
   * to leave it out (issue 12: half of Redis's CPU in the apply bench). Undefined when the pieces are not next,
   * or not all of one generation (the read script then says what the feed holds). `generation`: the feed's
   * createdAt when the pieces were appended (the append script refuses a piece whose generation is not the
   * feed's: FeedReplacedError).
   *
   * Why no round trip of its own (it was an HMGET of the generation and the trim point per read, issue 12: at
   * single-row transactions one of the few round trips each batch paid): a chain holds exactly the changes
   * after `sinceId`, so the reader misses nothing even if retention has trimmed them from Redis since; and a
   * feed created again under the name takes no more appends from this process's capture (the script answers
   * "replaced"), so the chain runs dry and the next read goes to the read script, which returns the new
   * generation, and the apply stops there (apply.processor.ts, guardedReads).
   */
  async readHeld(echo: FeedEcho, sinceId: string, limit: number): Promise<{ events: ChangeEvent[]; generation: string } | undefined> {
    const chain = echo.chain(sinceId, limit);
    if (!chain) return undefined;
    const createdAt = chain[0]![1].generation;
    if (chain.some(([, p]) => p.generation !== createdAt)) return undefined;
    // Each piece as it is now: one that let its objects go for text is decoded from that text.
    const entries: StreamEntry[] = chain.map(([id, p]) => {
      if (p.events) {
        const fields: (string | Buffer)[] = ['l', '1'];
        echoed.set(fields, { first: p.first, events: p.events });
        return [id, fields];
      }
      return [id, storedFields(p)];
    });
    const events = await this.o.decode(entries, sinceId);
    this.stats.chained += chain.length;
    if (ECHO_VERIFY) await this.verifyChain(sinceId, events);
    return { events, generation: createdAt };
  }

  /**
   * Entries the read script returned without payload (`l`): the held piece
   * when its generation is the feed's, else the entry fetched again in full.
   * The held events go in as `echo` on the entry (decode takes them as they are).
   */
  async fillEchoed(entries: StreamEntry[], createdAt: string | null): Promise<void> {
    const echo = echoOf(this.o.keys.stream);
    for (let i = 0; i < entries.length; i++) {
      const [id, fields] = entries[i]!;
      if (fieldOf(fields, 'l') !== '1') continue;
      const piece = echo?.get(id);
      if (piece && createdAt !== null && piece.generation === createdAt) {
        if (ECHO_VERIFY) await this.verifyEcho(id, piece);
        // The events as they are now (a later append may let the piece's objects go before decode runs).
        if (piece.events) echoed.set(fields, { first: piece.first, events: piece.events });
        // Held as text only: the entry as Redis would have returned it, decoded as such.
        else entries[i] = [id, storedFields(piece)];
        this.stats.taken++;
        continue;
      }
      const [full] = entriesOf(await this.o.redis.xrangeBuffer(this.o.keys.stream, id, id));
      if (!full) throw new Error(`feed ${this.o.name}: entry ${id} vanished between two reads`);
      entries[i] = full;
      this.stats.refetched++;
    }
  }

  /** TRIB_ECHO_VERIFY=1: what readHeld returns is what the feed holds after `sinceId`, from Redis. */
  private async verifyChain(sinceId: string, events: ChangeEvent[]): Promise<void> {
    const stored = (await this.o.decode(await this.o.readStored(sinceId, events.length), sinceId)).slice(0, events.length);
    if (!isDeepStrictEqual(stored, events)) {
      const i = stored.findIndex((e, k) => !isDeepStrictEqual(e, events[k]));
      throw new Error(`local echo differs from the feed after ${sinceId} at change ${i}: held ${JSON.stringify(events[i])} stored ${JSON.stringify(stored[i])}`);
    }
  }

  /** TRIB_ECHO_VERIFY=1: a held piece must equal, field by field, what Redis holds for it. */
  private async verifyEcho(id: string, piece: EchoPiece): Promise<void> {
    const [full] = entriesOf(await this.o.redis.xrangeBuffer(this.o.keys.stream, id, id));
    if (!full) throw new Error(`feed ${this.o.name}: entry ${id} vanished between two reads`);
    if (!piece.events) {
      // The held text is the piece's JSON; Redis may hold it as a binary piece (feed-codec-wire.ts): the same changes.
      const r = fieldOf(full[1], 'r');
      const same = isDeepStrictEqual(await this.o.decode([[id, storedFields(piece)]], null), await this.o.decode([full], null));
      if (!same || r !== (piece.estimate === undefined ? undefined : String(piece.estimate)) || (fieldOf(full[1], 'f') ?? id) !== piece.first) {
        throw new Error(`local echo differs from the feed at entry ${id}: the held text is not the stored entry`);
      }
      return;
    }
    const held = piece.events;
    const stored = await this.o.decode([full], null);
    if (!isDeepStrictEqual(stored, held)) {
      const i = stored.findIndex((e, k) => !isDeepStrictEqual(e, held[k]));
      throw new Error(`local echo differs from the feed at entry ${id}, event ${i}: held ${JSON.stringify(held[i])} stored ${JSON.stringify(stored[i])}`);
    }
  }
}

/** A piece held as text only: its entry's fields as Redis would return them. */
function storedFields(p: EchoPiece): (string | Buffer)[] {
  return p.estimate === undefined ? ['b', p.text!, 'f', p.first] : ['b', p.text!, 'f', p.first, 'r', String(p.estimate)];
}
