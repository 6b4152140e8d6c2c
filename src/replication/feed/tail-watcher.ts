/**
 * Waits for new entries at the tail of one Redis Stream on behalf of any
 * number of long-polling readers, over ONE dedicated blocking connection.
 *
 * Why shared: a blocking XREAD occupies its connection, so one connection per
 * waiting reader would cost a Redis connection per long poll (changeserver
 * clients long-poll by the thousand). Here every waiter registers the id it
 * has seen; a single loop blocks with `XREAD BLOCK ... STREAMS key <min id>`
 * and wakes every waiter whose id is below the entry that arrived. Woken
 * readers then re-read the feed themselves (with their own limit and
 * SNAPSHOT_TOO_OLD check).
 *
 * Interrupting the block: a waiter that leaves (timeout or AbortSignal) is
 * resolved at once in memory; it needs nothing from Redis. The loop only has
 * to restart its XREAD when a new waiter has seen LESS than the id it blocks
 * from (otherwise that waiter could miss entries in between); then the owning
 * connection sends `CLIENT UNBLOCK <id>` for the blocking connection, which
 * makes XREAD return at once like a timeout, and the connection stays usable.
 * Each XREAD also blocks for at most `sliceMs`, a safety net should an UNBLOCK
 * be lost (across a reconnect, or sent on the other connection just before
 * the XREAD reached Redis); the case needs a waiter whose since lies beyond
 * the stream's tail, so it is rare. close() disconnects the blocking connection.
 *
 *   idle --wait()--> blocking --entry/unblock/slice--> (waiters left? blocking : idle)
 */
import type { Redis } from 'ioredis';
import { compareStreamIds } from './feed-keys.ts';
import { blockingConnectionForKey, isCluster, nodeForKey } from '../redis-topology.ts';

export interface TailWatcherOptions {
  /** The feed's ordinary connection; duplicated once for blocking, and used to send CLIENT UNBLOCK. */
  redis: Redis;
  /** Stream key to watch. */
  key: string;
  /** Longest single XREAD BLOCK, ms. Default 5000. */
  sliceMs?: number;
}

interface Waiter { after: string; done(woke: boolean): void }

/** The watchers of each stream key in this process, for appendedHere. */
const watchersByKey = new Map<string, Set<TailWatcher>>();

/**
 * An append by this process put entries up to `lastId` into the stream `key`: its watchers here wake the waiters
 * below it at once, without waiting for their XREAD's answer (which arrives on another connection, sometimes
 * after the append's own reply; issue 12: a capture and its apply in one process). The XREAD still wakes
 * everyone else; a waiter woken twice reads once.
 */
export function appendedHere(key: string, lastId: string): void {
  const watchers = watchersByKey.get(key);
  if (watchers) for (const w of watchers) w.appended(lastId);
}

export class TailWatcher {
  private readonly sliceMs: number;
  private readonly waiters = new Set<Waiter>();
  private conn?: Redis;
  private connId?: number;
  private loop?: Promise<void>;
  private blockingFrom?: string;
  private closed = false;

  constructor(private readonly opts: TailWatcherOptions) {
    this.sliceMs = opts.sliceMs ?? 5000;
    if (!Number.isInteger(this.sliceMs) || this.sliceMs < 1) throw new RangeError(`sliceMs must be a positive integer, got ${opts.sliceMs}`);
    let set = watchersByKey.get(opts.key);
    if (!set) { set = new Set(); watchersByKey.set(opts.key, set); }
    set.add(this);
  }

  /** Entries up to `lastId` were appended (by this process: appendedHere): the waiters below it wake. */
  appended(lastId: string): void {
    for (const w of [...this.waiters]) if (compareStreamIds(w.after, lastId) < 0) w.done(true);
  }

  /** Number of readers currently waiting (for metrics and tests). */
  get waiting(): number { return this.waiters.size; }

  /**
   * Resolves true as soon as an entry with id > `afterId` exists, false after
   * `timeoutMs`, on abort, or on close. Never rejects.
   */
  wait(afterId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || signal?.aborted || timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => waiter.done(false);
      const timer = setTimeout(() => waiter.done(false), timeoutMs);
      const waiter: Waiter = {
        after: afterId,
        done: (woke) => {
          if (!this.waiters.delete(waiter)) return;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(woke);
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.blockingFrom !== undefined && compareStreamIds(afterId, this.blockingFrom) < 0) this.unblock();
      this.ensureLoop();
    });
  }

  /** Idempotent: wakes every waiter with false and drops the blocking connection. */
  async close(): Promise<void> {
    this.closed = true;
    const set = watchersByKey.get(this.opts.key);
    if (set?.delete(this) && set.size === 0) watchersByKey.delete(this.opts.key);
    for (const w of [...this.waiters]) w.done(false);
    const conn = this.conn;
    this.conn = undefined;
    conn?.disconnect();
    await this.loop?.catch(() => undefined);
  }

  private ensureLoop(): void {
    if (this.loop || this.closed) return;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      if (this.waiters.size > 0 && !this.closed) this.ensureLoop();
    });
  }

  private async run(): Promise<void> {
    while (this.waiters.size > 0 && !this.closed) {
      let from = '';
      for (const w of this.waiters) if (from === '' || compareStreamIds(w.after, from) < 0) from = w.after;
      let res: [string, [string, string[]][]][] | null;
      try {
        const conn = this.connection();
        // CLIENT ID changes with every reconnect, so it is re-read lazily (one round trip, only after a reconnect).
        if (this.connId === undefined) this.connId = (await conn.client('ID')) as number;
        this.blockingFrom = from;
        res = await conn.xread('COUNT', 1, 'BLOCK', this.sliceMs, 'STREAMS', this.opts.key, from);
      } catch {
        if (this.closed) return;
        // On Redis Cluster the blocking connection goes to the key's master directly: after a failure (slot moved, node down) ask again who owns it.
        if (isCluster(this.opts.redis)) this.dropConnection();
        await new Promise((r) => setTimeout(r, 100)); // connection trouble: ioredis reconnects; waiters keep their own deadlines
        continue;
      } finally {
        this.blockingFrom = undefined;
      }
      const id = res?.[0]?.[1]?.[0]?.[0];
      if (id === undefined) continue; // slice over or unblocked
      for (const w of [...this.waiters]) if (compareStreamIds(w.after, id) < 0) w.done(true);
    }
  }

  private connection(): Redis {
    if (!this.conn) {
      // A duplicate; on Redis Cluster a plain connection to the master owning the key, where CLIENT ID and UNBLOCK must go too.
      const conn = blockingConnectionForKey(this.opts.redis, this.opts.key);
      conn.on('ready', () => { this.connId = undefined; });
      conn.on('error', () => { /* reconnects on its own; run() sees command failures */ });
      this.conn = conn;
    }
    return this.conn;
  }

  private unblock(): void {
    const id = this.connId;
    if (id !== undefined) nodeForKey(this.opts.redis, this.opts.key)?.client('UNBLOCK', id).catch(() => undefined);
  }

  private dropConnection(): void {
    this.conn?.disconnect();
    this.conn = undefined;
    this.connId = undefined;
  }
}
