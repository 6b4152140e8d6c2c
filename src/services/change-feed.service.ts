/**
 * The change feed as a product: reading a feed with Transicator's filters
 * (scopes OR-merged, since exclusive, limit, snapshot, tables), long polling,
 * and live subscriptions that replay from `since` and then follow the tail.
 *
 * Every gateway instance reads the feeds straight from Redis, so a change
 * appended by any worker reaches subscribers on every gateway; no pub/sub hop
 * is needed (nor can one lose a change: the feed is the source of truth).
 * Within a gateway, one FeedHub per feed reads the tail once and dispatches
 * each change by scope to the live subscribers and parked long polls
 * (feed-hub.ts); only readers that are behind read Redis on their own.
 *
 * Scopes: an event's scope is the value of its row's selector column
 * (`_change_selector` by default); an event without one matches no scope.
 * Feed order is sequence order, so filtering keeps the merge of several
 * scopes sorted with no work.
 */
import type { Redis } from 'ioredis';
import type { ChangeEvent } from '../replication/change-event.ts';
import { SnapshotTooOldError, type FeedBounds } from '../replication/feed/change-feed.ts';
import { FeedParameterError } from '../replication/feed/feed-errors.ts';
import { feedKeys, FEED_NAME_RE } from '../replication/feed/feed-keys.ts';
import { listFeeds, openFeed } from '../replication/feed/feed-registry.ts';
import { MAX_READ_LIMIT, type RedisChangeFeed } from '../replication/feed/redis-change-feed.ts';
import { tableMatcher, validateScopes } from '../replication/feed/scope-filter.ts';
import { hiddenBySnapshot, parseSnapshot, type PgSnapshot } from '../replication/feed/snapshot-filter.ts';
import { InvalidSequenceError, parseSequence } from '../replication/sequence.ts';
import type { JobRepo } from '../store/job.repo.ts';
import { AppError, ErrorCode } from '../errors.ts';
import { FeedSubscription, SubscriberTooSlowError, type FeedSubscriptionOptions } from './change-subscription.ts';
import { FeedHub, type HubMember } from './feed-hub.ts';

export const DEFAULT_CHANGES_LIMIT = 100;
export const MAX_CHANGES_LIMIT = MAX_READ_LIMIT;
/** Longest accepted `block`, seconds (a day: long polls are cheap, but not forever). */
export const MAX_BLOCK_SECONDS = 86_400;
/** How long a resolved feed name (job name or environmentId -> feed) is reused, ms. */
const RESOLVE_TTL_MS = 2000;

export interface ChangesQuery {
  /** At least one; several are an OR. */
  scopes: readonly string[];
  /** Exclusive; null/undefined = from the oldest retained change. */
  since?: string | null;
  /** Default 100, at most 100000; 0 answers only the bounds (as Transicator's limit=0 did). */
  limit?: number | null;
  /** PostgreSQL snapshot "xmin:xmax:xip,..."; changes visible in it are hidden. */
  snapshot?: string | null;
  /** "schema.table" or "table"; empty = all. */
  tables?: readonly string[] | null;
  /** Long poll: wait up to this many seconds for a first matching change. Default 0. */
  block?: number | null;
}

export interface ChangeListResult {
  /** Oldest retained sequence. */
  firstSequence: string;
  /** Newest sequence examined (the feed's newest), or the last change's when `limit` was reached. */
  lastSequence: string;
  changes: ChangeEvent[];
  warnings: string[];
}

export interface FeedSummary {
  name: string;
  firstSequence: string;
  lastSequence: string;
  length: number;
  /** The job writing this feed, if any. */
  jobName: string | null;
}

export interface ChangeFeedServiceOptions {
  redis: Redis;
  /** Feed key prefix (the app's queue prefix). */
  prefix: string;
  jobs: JobRepo;
  subscription?: FeedSubscriptionOptions;
  /** Long polls (`block` > 0) waiting at once; past it a blocking read is UNAVAILABLE at once. Default 10000. */
  maxLongPollWaiters?: number;
}

const SNAPSHOT_MARIADB_WARNING = 'snapshot ignored for MariaDB/MySQL changes: their transaction ids are not PostgreSQL xids';

/** Feed-layer errors in the GraphQL vocabulary. */
export function toAppError(err: unknown): unknown {
  if (err instanceof SnapshotTooOldError) {
    return new AppError(ErrorCode.SnapshotTooOld, err.message, { since: err.since, firstSequence: err.first }, { cause: err });
  }
  if (err instanceof FeedParameterError) {
    return new AppError(ErrorCode.ParameterInvalid, err.message, { parameter: err.parameter }, { cause: err });
  }
  if (err instanceof InvalidSequenceError) {
    return new AppError(ErrorCode.ParameterInvalid, err.message, { parameter: 'since' }, { cause: err });
  }
  if (err instanceof SubscriberTooSlowError) {
    return new AppError(ErrorCode.SubscriberTooSlow, err.message, { lastDelivered: err.lastDelivered, bufferEvents: err.bufferEvents, stallMs: err.stallMs }, { cause: err });
  }
  return err;
}

const invalid = (parameter: string, message: string) => new AppError(ErrorCode.ParameterInvalid, message, { parameter });

interface Filters { since: string | null; scopes: ReadonlySet<string>; accept: (e: ChangeEvent) => boolean; snapshot?: PgSnapshot }

export class ChangeFeedService {
  private readonly feeds = new Map<string, RedisChangeFeed>();
  private readonly hubs = new Map<string, FeedHub>();
  /** Parked long polls' wake-ups (their answer on shutdown). */
  private readonly parked = new Set<() => void>();
  private readonly resolved = new Map<string, { feed: Promise<string>; at: number }>();
  private readonly boundsReads = new Map<string, { startedAt: number; promise: Promise<FeedBounds> }>();
  private readonly live = new Set<FeedSubscription>();
  private closed = false;
  /** Aborted by close(): pending long polls answer at once. */
  private readonly stopping = new AbortController();

  /** Blocking reads waiting now (see maxLongPollWaiters). */
  waiters = 0;

  constructor(private readonly opts: ChangeFeedServiceOptions) {}

  /** The feed called `name`: a feed a job writes, a job's name, or a feed already in Redis. NOT_FOUND otherwise. */
  async feed(name: string): Promise<RedisChangeFeed> {
    if (this.closed) throw new AppError(ErrorCode.Unavailable, 'the change feed service is shutting down');
    if (typeof name !== 'string' || !FEED_NAME_RE.test(name)) throw invalid('feed', `invalid feed name ${JSON.stringify(name)}`);
    // Resolved names are kept briefly, and concurrent lookups share one: 10,000 long polls arriving
    // together must not cost 20,000 metadata queries.
    const known = this.resolved.get(name);
    if (known && performance.now() - known.at < RESOLVE_TTL_MS) return this.open(await known.feed);
    if (this.resolved.size >= 10_000) this.resolved.clear();
    const entry = { feed: this.resolve(name), at: performance.now() };
    this.resolved.set(name, entry);
    entry.feed.catch(() => { if (this.resolved.get(name) === entry) this.resolved.delete(name); });
    return this.open(await entry.feed);
  }

  private async resolve(name: string): Promise<string> {
    if (await this.opts.jobs.byFeed(name)) return name;
    const job = await this.opts.jobs.find(name).catch(() => undefined);
    if (job?.feed_name) return job.feed_name;
    if (await this.opts.redis.exists(feedKeys(this.opts.prefix, name).meta)) return name;
    throw new AppError(ErrorCode.NotFound, `feed ${name} not found`, { what: 'feed', id: name });
  }

  private async open(name: string): Promise<RedisChangeFeed> {
    let f = this.feeds.get(name);
    if (!f) {
      f = openFeed(this.opts.redis, name, { prefix: this.opts.prefix });
      this.feeds.set(name, f);
    }
    return f;
  }

  /**
   * The feed's bounds as of now or later. Callers arriving together (10,000
   * long polls woken by one change) share one Redis round trip: a bounds read
   * still in flight is reused if it started no earlier than `readAt` (when
   * the caller's changes were read), so the bounds are never older than them.
   */
  private boundsNow(feed: RedisChangeFeed, readAt: number): Promise<FeedBounds> {
    const now = performance.now();
    const cur = this.boundsReads.get(feed.name);
    if (cur && cur.startedAt >= readAt) return cur.promise;
    const read = { startedAt: now, promise: feed.bounds() };
    this.boundsReads.set(feed.name, read);
    const forget = (): void => { if (this.boundsReads.get(feed.name) === read) this.boundsReads.delete(feed.name); };
    read.promise.then(forget, forget);
    return read.promise;
  }

  /** The feed's shared tail reader in this gateway. */
  private hub(feed: RedisChangeFeed): FeedHub {
    let h = this.hubs.get(feed.name);
    if (!h) {
      const o = this.opts.subscription;
      h = new FeedHub(feed, { readBatch: o?.readBatch, blockSliceMs: o?.blockSliceMs });
      this.hubs.set(feed.name, h);
    }
    return h;
  }

  private filters(q: { scopes: readonly string[]; since?: string | null; snapshot?: string | null; tables?: readonly string[] | null }): Filters {
    try {
      const scopes = new Set(validateScopes([...q.scopes], { required: true }));
      const since = q.since === undefined || q.since === null || q.since === '' ? null : (parseSequence(q.since), q.since);
      const snapshot = q.snapshot ? parseSnapshot(q.snapshot) : undefined;
      const table = tableMatcher([...(q.tables ?? [])]);
      const accept = (e: ChangeEvent) => e.scope !== undefined && scopes.has(e.scope) && table(e) && !(snapshot && hiddenBySnapshot(e, snapshot));
      return { since, scopes, accept, snapshot };
    } catch (err) {
      throw toAppError(err);
    }
  }

  /** Matching changes after `since`, up to `limit`; with `block`, waits for the first one. */
  async changes(feedName: string, q: ChangesQuery, signal?: AbortSignal): Promise<ChangeListResult> {
    const limit = q.limit ?? DEFAULT_CHANGES_LIMIT;
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_CHANGES_LIMIT) throw invalid('limit', `limit must be an integer from 0 to ${MAX_CHANGES_LIMIT}, got ${limit}`);
    const block = q.block ?? 0;
    if (!Number.isInteger(block) || block < 0 || block > MAX_BLOCK_SECONDS) throw invalid('block', `block must be a whole number of seconds from 0 to ${MAX_BLOCK_SECONDS}, got ${block}`);
    const f = this.filters(q);
    const feed = await this.feed(feedName);
    try {
      if (limit === 0) {
        // No changes, only where the feed stands; a since older than retention is still SNAPSHOT_TOO_OLD.
        if (f.since !== null) await feed.read(f.since, 1);
        const bounds = await feed.bounds();
        return { firstSequence: bounds.first, lastSequence: bounds.last, changes: [], warnings: [] };
      }
      const stop = signal ?? this.stopping.signal;
      const max = this.opts.maxLongPollWaiters ?? 10_000;
      if (block > 0 && this.waiters >= max) {
        throw new AppError(ErrorCode.Unavailable, `too many long polls are waiting in this gateway (the limit is ${max}): retry later, or without block`, { limit: max });
      }
      if (block > 0) this.waiters++;
      let collected: Awaited<ReturnType<ChangeFeedService['collect']>>;
      try {
        collected = await this.collect(feed, f, limit, Date.now() + block * 1000, stop);
      } finally {
        if (block > 0) this.waiters--;
      }
      const { changes, scannedThrough, sawMariaDb, readAt } = collected;
      const bounds = await this.boundsNow(feed, readAt);
      const lastSequence = changes.length === limit ? changes[changes.length - 1]!.sequence : scannedThrough ?? bounds.last;
      return { firstSequence: bounds.first, lastSequence, changes, warnings: f.snapshot && sawMariaDb ? [SNAPSHOT_MARIADB_WARNING] : [] };
    } catch (err) {
      throw toAppError(err);
    }
  }

  /**
   * Reads raw batches after the cursor until `limit` matches are collected or
   * the end of the feed is reached; when nothing matched yet and time is left,
   * waits at the tail (filters may drop everything read, so this loops).
   */
  private async collect(feed: RedisChangeFeed, f: Filters, limit: number, deadline: number, signal: AbortSignal) {
    const changes: ChangeEvent[] = [];
    let cursor = f.since;
    let scannedThrough: string | null = f.since;
    let sawMariaDb = false;
    let readAt = performance.now();
    const batch = Math.min(MAX_READ_LIMIT, Math.max(limit, 500));
    for (;;) {
      const raw = await feed.read(cursor, batch);
      readAt = performance.now();
      if (raw.length === 0) {
        const left = deadline - Date.now();
        if (changes.length > 0 || left <= 0 || signal.aborted || this.closed) break;
        // At the tail with nothing yet: park on the feed's hub, which reads each new change once for every waiter.
        const got = await this.park(feed, f, cursor, limit, left, signal);
        if (got === 'behind') continue; // the hub had read past the cursor: read on from Redis
        for (const e of got.changes) if (e.source !== 'postgres') sawMariaDb = true;
        if (got.changes.length > 0) {
          const scanned = got.changes.length === limit ? got.changes[limit - 1]!.sequence : got.through ?? cursor;
          return { changes: got.changes, scannedThrough: scanned, sawMariaDb, readAt: got.at };
        }
        if (got.through !== null) cursor = scannedThrough = got.through;
        if (got.timedOut) break;
        continue;
      }
      for (const e of raw) {
        if (e.source !== 'postgres') sawMariaDb = true;
        if (f.accept(e)) changes.push(e);
        if (changes.length === limit) return { changes, scannedThrough: e.sequence, sawMariaDb, readAt };
      }
      cursor = raw[raw.length - 1]!.sequence;
      scannedThrough = cursor;
      if (raw.length < batch && changes.length > 0) break;
    }
    return { changes, scannedThrough, sawMariaDb, readAt };
  }

  /**
   * One long poll parked on the feed's hub after `cursor` for up to `waitMs`:
   * its first matching changes (up to `limit`) with the last sequence the hub
   * examined, or nothing on timeout/abort; 'behind' when the hub has read past `cursor`.
   */
  private park(feed: RedisChangeFeed, f: Filters, cursor: string | null, limit: number, waitMs: number, signal: AbortSignal) {
    type Parked = { changes: ChangeEvent[]; through: string | null; timedOut: boolean; at: number };
    const hub = this.hub(feed);
    return new Promise<Parked | 'behind'>((resolve, reject) => {
      const changes: ChangeEvent[] = [];
      let settled = false;
      const settle = (r: Omit<Parked, 'at'> | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.parked.delete(onAbort);
        if (signal !== this.stopping.signal) signal.removeEventListener('abort', onAbort);
        hub.detach(member);
        if (r instanceof Error) reject(r); else resolve({ ...r, at: performance.now() });
      };
      const member: HubMember = {
        scopes: f.scopes,
        accept: f.accept,
        offer: (e) => { if (changes.length >= limit) return false; changes.push(e); return true; },
        flush: (through) => settle({ changes, through, timedOut: false }),
        detached: (through, err) => settle(err !== undefined && changes.length === 0 ? (err as Error) : { changes, through, timedOut: false }),
      };
      const onAbort = (): void => settle({ changes, through: null, timedOut: true });
      const timer = setTimeout(onAbort, waitMs);
      if (!hub.attach(member, cursor)) {
        settled = true;
        clearTimeout(timer);
        resolve('behind');
        return;
      }
      // Shutdown reaches parked polls through this set: one listener each on the shared shutdown
      // signal would make every removal O(waiters), and 10,000 polls woken together O(n^2).
      this.parked.add(onAbort);
      if (signal !== this.stopping.signal) signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Replays matching changes after `since`, then follows the feed live. The
   * returned iterator is bounded (see FeedSubscription); a subscriber that
   * cannot keep up ends with SUBSCRIBER_TOO_SLOW.
   */
  async subscribe(feedName: string, q: { scopes: readonly string[]; since?: string | null; tables?: readonly string[] | null }): Promise<AsyncIterableIterator<ChangeEvent>> {
    const f = this.filters(q);
    const feed = await this.feed(feedName);
    if (f.since !== null) {
      try { await feed.read(f.since, 1); } catch (err) { throw toAppError(err); } // SNAPSHOT_TOO_OLD up front, not after the first pull
    }
    const sub: FeedSubscription = new FeedSubscription(feed, this.hub(feed), f.since, f.scopes, f.accept, this.opts.subscription, (err) => toAppError(err) as Error, () => this.live.delete(sub));
    this.live.add(sub);
    return sub;
  }

  /** Every feed with its bounds, sorted by name. */
  async list(): Promise<FeedSummary[]> {
    const names = await listFeeds(this.opts.redis, this.opts.prefix);
    return Promise.all(names.map(async (name) => {
      const feed = await this.open(name);
      const [bounds, length, job] = await Promise.all([feed.bounds(), feed.length(), this.opts.jobs.byFeed(name)]);
      return { name, firstSequence: bounds.first, lastSequence: bounds.last, length, jobName: job?.name ?? null };
    }));
  }

  /** Readers attached to `feed`'s hub in this gateway now: live subscribers at the tail and parked long polls (for metrics and tests). */
  parkedOn(feed: string): number { return this.hubs.get(feed)?.size ?? 0; }

  /** The hub of `feed` in this gateway, if it has one (for benchmarks and tests). */
  hubOf(feed: string): FeedHub | undefined { return this.hubs.get(feed); }

  /** Live subscriptions (for metrics and tests). */
  get subscribers(): number { return this.live.size; }

  /** Ends live subscriptions and closes the feeds' tail watchers. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    for (const wake of [...this.parked]) wake();
    for (const s of [...this.live]) s.close();
    const hubs = [...this.hubs.values()];
    this.hubs.clear();
    await Promise.all(hubs.map((h) => h.close()));
    const feeds = [...this.feeds.values()];
    this.feeds.clear();
    await Promise.all(feeds.map((f) => f.close().catch(() => undefined)));
  }
}
