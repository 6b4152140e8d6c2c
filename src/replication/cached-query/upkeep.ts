/**
 * The upkeep loop of one cached query: follows the capture's change feed
 * and keeps the result fresh, in one of two modes.
 *
 *   incremental:  baseline (consistent snapshot) --> apply each change
 *                 --> recompute stale MIN/MAX groups --> save + push if changed
 *   rerun:        change to a table the query reads --> wait `debounceMs` of
 *                 quiet (at most `maxDelayMs`) --> run the query --> save + push
 *
 * Crash safety: `save` stores the result together with the last feed
 * sequence it covers (and the aggregate state), in one write; a restarted
 * upkeep resumes reading after that sequence. A reader that fell behind
 * retention takes a new baseline.
 */
import type { ChangeEvent, Value } from '../change-event.ts';
import { SnapshotTooOldError, type ChangeFeed } from '../feed/change-feed.ts';
import type { ResultRows, SerializedState } from './aggregate-state.ts';
import type { IncrementalEngine } from './incremental-engine.ts';
import { hiddenByBaseline, type BaselineFilter, type SourceSession } from './source-session.ts';

export type CachedRow = Record<string, Value>;

export interface CachedResult { columns: string[]; rows: CachedRow[]; keys: string[] }

export interface UpkeepState {
  /** Set after a baseline until the first change it does not contain. */
  filter?: BaselineFilter | null;
  aggregate?: SerializedState;
}

export interface UpkeepCheckpoint {
  lastSequence: string | null;
  version: number;
  result: CachedResult | null;
  state: UpkeepState | null;
}

export interface UpkeepUpdate {
  result: CachedResult;
  /** Only when the rows changed (a new version); otherwise a checkpoint of the position. */
  changed?: { upserted: CachedRow[]; removed: CachedRow[] };
  version: number;
  lastSequence: string | null;
  state: UpkeepState;
}

export interface UpkeepOptions {
  mode: 'incremental' | 'rerun';
  engine?: IncrementalEngine;
  sql: string;
  source: SourceSession;
  /** Tables (schema, table) whose changes make a rerun query stale. */
  tables: { schema: string; table: string }[];
  feed: ChangeFeed;
  checkpoint: UpkeepCheckpoint;
  save(update: UpkeepUpdate): Promise<void>;
  signal: AbortSignal;
  /** Quiet time before a rerun. Default 250 ms. */
  debounceMs?: number;
  /** Longest a rerun waits under constant changes. Default 2000 ms. */
  maxDelayMs?: number;
  /** Changes read per feed call. Default 2000. */
  batchSize?: number;
  /** Position-only checkpoints at most this often. Default 1000 ms. */
  checkpointIntervalMs?: number;
}

function diff(prev: CachedResult | null, next: CachedResult): { upserted: CachedRow[]; removed: CachedRow[] } | undefined {
  const before = new Map<string, string>();
  prev?.keys.forEach((k, i) => before.set(k, JSON.stringify(prev.rows[i])));
  const upserted: CachedRow[] = [];
  const seen = new Set<string>();
  next.keys.forEach((k, i) => {
    seen.add(k);
    if (before.get(k) !== JSON.stringify(next.rows[i])) upserted.push(next.rows[i]!);
  });
  const removed = prev ? prev.keys.flatMap((k, i) => (seen.has(k) ? [] : [prev.rows[i]!])) : [];
  const sameColumns = JSON.stringify(prev?.columns) === JSON.stringify(next.columns);
  if (prev && sameColumns && upserted.length === 0 && removed.length === 0) return undefined;
  return { upserted, removed };
}

function rerunResult(columns: string[], rows: Value[][]): CachedResult {
  const out = rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] ?? null])) as CachedRow);
  // Without a key, a row is its own identity (duplicates numbered).
  const counts = new Map<string, number>();
  const keys = out.map((r) => { const j = JSON.stringify(r); const n = (counts.get(j) ?? 0) + 1; counts.set(j, n); return `${j}#${n}`; });
  return { columns, rows: out, keys };
}

export function uniqueColumns(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => { const k = (seen.get(n) ?? 0) + 1; seen.set(n, k); return k === 1 ? n : `${n}_${k}`; });
}

export async function runUpkeep(o: UpkeepOptions): Promise<void> {
  const debounceMs = o.debounceMs ?? 250;
  const maxDelayMs = o.maxDelayMs ?? 2000;
  const batch = o.batchSize ?? 2000;
  const cpEvery = o.checkpointIntervalMs ?? 1000;
  let since = o.checkpoint.lastSequence;
  let version = o.checkpoint.version;
  let prev = o.checkpoint.result;
  let filter: BaselineFilter | null = o.checkpoint.state?.filter ?? null;
  let lastSave = 0;
  let pendingPosition = false;

  const state = (): UpkeepState => ({ filter, ...(o.engine ? { aggregate: o.engine.state.serialize() } : {}) });
  const publish = async (next: CachedResult) => {
    const changed = diff(prev, next);
    if (!changed) {
      if (pendingPosition && Date.now() - lastSave >= cpEvery) {
        await o.save({ result: prev!, version, lastSequence: since, state: state() });
        lastSave = Date.now(); pendingPosition = false;
      }
      return;
    }
    version += 1;
    await o.save({ result: next, changed, version, lastSequence: since, state: state() });
    prev = next; lastSave = Date.now(); pendingPosition = false;
  };
  const fromEngine = (r: ResultRows): CachedResult => ({ columns: r.columns, rows: r.rows, keys: r.keys });
  const rerun = async () => {
    const r = await o.source.run(o.sql);
    await publish(rerunResult(uniqueColumns(r.columns), r.rows));
  };
  /** A fresh start: everything up to the feed's current end is inside what we read next. */
  const rebase = async () => {
    since = (await o.feed.bounds()).last;
    if (o.engine) { filter = await o.engine.baseline(); await publish(fromEngine(o.engine.result())); }
    else { filter = null; await rerun(); }
  };

  if (o.engine && o.checkpoint.state?.aggregate) o.engine.restore(o.checkpoint.state.aggregate);
  else if (!prev || (o.engine && !o.checkpoint.state?.aggregate)) await rebase();

  const relevant = (ev: ChangeEvent) => o.tables.some((t) => t.schema === ev.schema && t.table === ev.table);
  let firstDirty = 0; let lastDirty = 0;

  while (!o.signal.aborted) {
    const wait = firstDirty ? Math.max(0, Math.min(debounceMs - (Date.now() - lastDirty), maxDelayMs - (Date.now() - firstDirty))) : 1000;
    let events: ChangeEvent[];
    try {
      events = await o.feed.readBlocking(since, batch, wait, o.signal);
    } catch (err) {
      if (err instanceof SnapshotTooOldError) { await rebase(); continue; }
      throw err;
    }
    if (o.signal.aborted) break;
    for (const ev of events) {
      since = ev.sequence;
      pendingPosition = true;
      if (o.engine) {
        if (filter) {
          if (hiddenByBaseline(ev, filter)) continue;
          // Commit order: once one change is past the snapshot, all later ones are.
          filter = null;
        }
        o.engine.apply(ev);
      } else if (relevant(ev)) {
        lastDirty = Date.now();
        firstDirty ||= lastDirty;
      }
    }
    if (o.engine) {
      if (o.engine.baselineNeeded) filter = await o.engine.baseline();
      await o.engine.refreshStale();
      await publish(fromEngine(o.engine.result()));
    } else if (firstDirty && (Date.now() - lastDirty >= debounceMs || Date.now() - firstDirty >= maxDelayMs)) {
      firstDirty = 0; lastDirty = 0;
      await rerun();
    } else if (!firstDirty && prev) {
      await publish(prev);
    }
  }
}
