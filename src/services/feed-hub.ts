/**
 * One shared reader at the tail of one feed, per gateway process: it reads
 * and decodes every new change ONCE and hands it to the live subscribers and
 * long polls waiting on that feed, dispatched by scope.
 *
 * Why: before the hub, every subscriber read and decoded the whole feed on
 * its own, so N subscribers cost N reads and N decodes per change (1,000
 * subscribers at 1k changes/s is a million decodes a second). With the hub a
 * change costs one read and one decode, and reaches only the members whose
 * scope it carries (an event has one scope, so a member listed under several
 * scopes still gets it at most once).
 *
 * Joining without gap or duplicate: a member that is behind the hub reads
 * Redis itself (replay) and asks to join again; `attach(member, cursor)`
 * succeeds only when the hub has not read past `cursor` (everything the
 * member has examined). The member is then handed every change after
 * max(its cursor, the hub's cursor): the hub's in-flight read returns changes
 * after the hub's cursor, and the member skips those at or before its own.
 * Attach and dispatch run on the one JS thread, so nothing slips in between.
 * An idle hub (no members) starts at the first joiner's cursor.
 *
 * Leaving: a member whose buffer is full refuses a change (`offer` returns
 * false); the hub detaches it at once, telling it the last sequence it had
 * examined, and carries on: a slow member never slows the others. It catches
 * up by reading Redis itself and joins again. When the last member leaves,
 * the hub stops reading. A read failure (e.g. Redis down, SNAPSHOT_TOO_OLD
 * because retention overtook the hub) detaches every member with the error.
 */
import type { ChangeEvent } from '../replication/change-event.ts';
import type { ChangeFeed } from '../replication/feed/change-feed.ts';
import { compareSequences } from '../replication/sequence.ts';

export interface HubMember {
  /** Scopes whose changes this member wants (fixed for its life). */
  readonly scopes: ReadonlySet<string>;
  /** Further filtering (tables, snapshot); called for changes of its scopes only. */
  accept(e: ChangeEvent): boolean;
  /** Takes one change; false = no room (the hub detaches the member, the change is not taken). */
  offer(e: ChangeEvent): boolean;
  /** End of a hub read that offered this member something; `through` = last sequence the hub examined. */
  flush(through: string): void;
  /** The hub let go of the member: `cursor` = last sequence it had examined; `err` when the hub's read failed. */
  detached(cursor: string | null, err?: unknown): void;
}

interface Seat { member: HubMember; after: string | null }

export interface FeedHubOptions {
  /** Most changes read per round trip. Default 1000. */
  readBatch?: number;
  /** Longest single blocking wait, ms (re-armed in a loop). Default 5000. */
  blockSliceMs?: number;
}

const after = (a: string | null, b: string | null): boolean => (a === null ? false : b === null ? true : compareSequences(a, b) > 0);

export class FeedHub {
  private readonly seats = new Map<HubMember, Seat>();
  private readonly byScope = new Map<string, Set<Seat>>();
  private cursor: string | null = null;
  private loop?: Promise<void>;
  private stop?: AbortController;
  private closed = false;
  private readonly readBatch: number;
  private readonly blockSliceMs: number;

  /** Changes decoded by this hub (for metrics and tests). */
  decoded = 0;
  /** When the last dispatch finished handing changes over (performance.timeOrigin-based ms), and to how many members. */
  lastDispatch = { at: 0, members: 0, ms: 0 };

  constructor(private readonly feed: ChangeFeed, opts: FeedHubOptions = {}) {
    this.readBatch = opts.readBatch ?? 1000;
    this.blockSliceMs = opts.blockSliceMs ?? 5000;
  }

  /** Members attached now. */
  get size(): number { return this.seats.size; }

  /**
   * Joins `member`, which has examined everything up to `cursor`, if the hub
   * has not read beyond it; false when it has (read on, then try again) or the hub is closed.
   */
  attach(member: HubMember, cursor: string | null): boolean {
    if (this.closed) return false;
    if (this.seats.has(member)) return true;
    if (this.loop) {
      if (after(this.cursor, cursor)) return false;
    } else {
      this.cursor = cursor;
    }
    const seat: Seat = { member, after: after(cursor, this.cursor) ? cursor : null };
    this.seats.set(member, seat);
    for (const s of member.scopes) {
      let set = this.byScope.get(s);
      if (!set) this.byScope.set(s, (set = new Set()));
      set.add(seat);
    }
    this.ensureLoop();
    return true;
  }

  /** Leaves quietly (the member ends, or gave up waiting). No-op when not attached. */
  detach(member: HubMember): void {
    const seat = this.seats.get(member);
    if (seat) this.unseat(seat);
    if (this.seats.size === 0) this.stop?.abort();
  }

  /** Detaches every member (as ended, without error) and stops reading. */
  async close(): Promise<void> {
    this.closed = true;
    const cursor = this.cursor;
    for (const seat of [...this.seats.values()]) {
      this.unseat(seat);
      seat.member.detached(cursor);
    }
    this.stop?.abort();
    await this.loop?.catch(() => undefined);
  }

  private unseat(seat: Seat): void {
    this.seats.delete(seat.member);
    for (const s of seat.member.scopes) {
      const set = this.byScope.get(s);
      if (!set) continue;
      set.delete(seat);
      if (set.size === 0) this.byScope.delete(s);
    }
  }

  private ensureLoop(): void {
    if (this.loop || this.closed) return;
    const stop = new AbortController();
    this.stop = stop;
    this.loop = this.run(stop.signal).finally(() => {
      this.loop = undefined;
      if (this.seats.size > 0 && !this.closed) this.ensureLoop();
    });
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (this.seats.size > 0 && !signal.aborted) {
      let events: ChangeEvent[];
      try {
        events = await this.feed.readBlocking(this.cursor, this.readBatch, this.blockSliceMs, signal);
      } catch (err) {
        const cursor = this.cursor;
        for (const seat of [...this.seats.values()]) {
          this.unseat(seat);
          seat.member.detached(seat.after ?? cursor, err);
        }
        return;
      }
      if (events.length === 0) continue;
      this.decoded += events.length;
      this.dispatch(events);
    }
  }

  private dispatch(events: ChangeEvent[]): void {
    const start = performance.now();
    const touched = new Set<Seat>();
    let prev = this.cursor;
    for (const e of events) {
      const set = e.scope === undefined ? undefined : this.byScope.get(e.scope);
      if (set) {
        for (const seat of [...set]) {
          if (seat.after !== null) {
            if (compareSequences(e.sequence, seat.after) <= 0) continue;
            seat.after = null;
          }
          if (!seat.member.accept(e)) continue;
          if (seat.member.offer(e)) { touched.add(seat); continue; }
          // Full: it has examined everything before e; it catches up on its own.
          this.unseat(seat);
          touched.delete(seat);
          seat.member.detached(prev);
        }
      }
      prev = e.sequence;
    }
    this.cursor = prev;
    for (const seat of touched) seat.member.flush(prev!);
    const end = performance.now();
    this.lastDispatch = { at: performance.timeOrigin + end, members: touched.size, ms: end - start };
  }
}
