/**
 * Redis key layout of a change feed. Every key of one feed carries the same
 * hash tag `{name}`, so on Redis Cluster they share a slot and the Lua
 * scripts and MULTI blocks that touch several of them stay legal.
 *
 *   <prefix>:feed:{<name>}:stream   the Redis Stream of events
 *   <prefix>:feed:{<name>}:meta     hash: lastId, trimmedId, resume, createdAt
 *   <prefix>:feed:{<name>}:columns  hash: column-set id -> column-set JSON
 *
 * Beside the feeds, the other keys the engine's tasks keep under the same prefix:
 *
 *   <prefix>:job:{<job id>}:inflight                 counter: transactions appended, not yet applied
 *   <prefix>:task-failures:<task id>:<run id>        counter: consecutive failures of a task run
 */
import { FeedParameterError } from './feed-errors.ts';

export const DEFAULT_FEED_PREFIX = 'tributary';

/** Names never contain `{`, `}` or `:`, so they cannot break the hash tag or the key layout. */
export const FEED_NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

export function validateFeedName(name: string): string {
  if (typeof name !== 'string' || !FEED_NAME_RE.test(name)) {
    throw new FeedParameterError('feed name', name, `expected ${FEED_NAME_RE.source}`);
  }
  return name;
}

export interface FeedKeys { stream: string; meta: string; columns: string }

export function feedKeys(prefix: string, name: string): FeedKeys {
  const base = `${prefix}:feed:{${validateFeedName(name)}}`;
  return { stream: `${base}:stream`, meta: `${base}:meta`, columns: `${base}:columns` };
}

/** Transactions a job's capture appended and its apply has not yet applied (capture waits past replChanBufferSize). */
export function inflightKey(prefix: string, jobId: string): string {
  return `${prefix}:job:{${jobId}}:inflight`;
}

/** The failure streak of one run of a task (task-run.ts). */
export function taskFailuresKey(prefix: string, taskId: string, runId: number): string {
  return `${prefix}:task-failures:${taskId}:${runId}`;
}

/** SCAN pattern for every feed's meta key under `prefix` (glob metacharacters in the prefix escaped). */
export function metaKeyPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, '\\$&')}:feed:{*}:meta`;
}

/** Feed name from a meta key, or undefined when the key is not one of ours. */
export function feedNameFromMetaKey(prefix: string, key: string): string | undefined {
  const head = `${prefix}:feed:{`;
  const tail = '}:meta';
  if (!key.startsWith(head) || !key.endsWith(tail)) return undefined;
  const name = key.slice(head.length, key.length - tail.length);
  return FEED_NAME_RE.test(name) ? name : undefined;
}

/** Redis Stream ids ("<ms>-<seq>", both unsigned 64-bit) compared numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = splitId(a);
  const [bm, bs] = splitId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

function splitId(id: string): [bigint, bigint] {
  const dash = id.indexOf('-');
  return dash < 0 ? [BigInt(id), 0n] : [BigInt(id.slice(0, dash)), BigInt(id.slice(dash + 1))];
}

/** A job's incremental snapshot requests (snapshotTables, addTables): a hash, one JSON field per request id. */
export function incrementalSnapshotKey(prefix: string, jobId: string): string {
  return `${prefix}:job:{${jobId}}:incremental-snapshots`;
}
