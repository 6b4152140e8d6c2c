/**
 * The delivery loop of one sink, free of storage and queue details: read a
 * batch from the feed after the checkpoint, encode the selected changes,
 * spread keys over lanes, deliver each lane in order with retries, park what
 * cannot be delivered in the dead-letter list, and only then move the
 * checkpoint past the batch.
 *
 * Ordering: a key (table + primary key) always hashes to the same lane and a
 * lane delivers one call at a time, so a key's messages reach the target in
 * feed order. For brokers (Sink.atomicBatches false) a call never holds two
 * messages of one key, so retrying a partly failed call cannot put a later
 * message of a key before an earlier one. Batches run one after the other.
 *
 * Exactly once in effect: the checkpoint moves only after every message of
 * the batch was confirmed or dead-lettered. A crash before that re-sends the
 * batch with the same message ids; the target's deduplication (JetStream's
 * duplicate window, Idempotency-Key, message-id) drops what it already has.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageId, retryDelay, SinkFailurePolicy, type SinkDelivery, type SinkFormat } from '../../domain/sink-model.ts';
import { Operation, type ChangeEvent } from '../change-event.ts';
import type { ChangeFeed } from '../feed/change-feed.ts';
import { lagClockOf } from '../commit-clock.ts';
import { CONTENT_TYPE, encodeChange } from './formats/sink-formats.ts';
import { asSinkError, SinkError, type Sink, type SinkMessage } from './sink.ts';

/** A message the sink gave up on, with the change it carries (so it can be replayed in any format later). */
export interface DeadLetter {
  message: SinkMessage;
  event: ChangeEvent;
  error: string;
  attempts: number;
}

export interface SinkProgress {
  /** Feed sequence every selected change up to which is confirmed or dead-lettered. */
  position: string;
  delivered: number;
  deadLettered: number;
  /** Commit time of the batch's last change (for lag). */
  lastCommitTime: number;
}

export interface SinkRunOptions {
  feed: ChangeFeed;
  sink: Sink;
  format: SinkFormat;
  /** `schema.table` or `table` names; empty = every table. */
  tables: string[];
  delivery: SinkDelivery;
  /** Checkpoint to continue after (null = the oldest retained change). */
  position: string | null;
  signal: AbortSignal;
  /** Keys that have messages in the dead-letter list now (their later messages join them). */
  blockedKeys(): Promise<Set<string>>;
  /** Store dead letters durably; called before the checkpoint that passes them. */
  deadLetter(letters: DeadLetter[]): Promise<void>;
  /** Store the checkpoint (and counts). Throwing stops the run. */
  checkpoint(p: SinkProgress): Promise<void>;
  /**
   * A delivery attempt failed and will be retried after `delayMs`.
   * `oldestCommitTime` is the commit time of the call's first change: the
   * sink is at least that far behind while the call is stuck.
   */
  onRetry?(info: { error: string; attempt: number; delayMs: number; messages: number; oldestCommitTime: number }): void;
  random?: () => number;
}

/** onFailure STOP and a message used up its retries: the sink stops before it. */
export class SinkStoppedError extends SinkError {
  override readonly name = 'SinkStoppedError';
  constructor(message: string, options?: { cause?: unknown }) { super(message, false, true, options); }
}

/** The ordering key of a change: table plus primary-key values (the whole row for a keyless table). */
export function orderingKey(e: ChangeEvent): string {
  const row = e.after ?? e.before ?? {};
  const parts = e.key.length ? e.key.map((k) => row[k] ?? null) : (e.before ?? e.after);
  return `${e.schema}.${e.table}:${JSON.stringify(parts)}`;
}

function laneOf(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) { h ^= key.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return (h >>> 0) % lanes;
}

export function tableFilter(tables: string[]): (e: ChangeEvent) => boolean {
  if (!tables.length) return () => true;
  const set = new Set(tables);
  return (e) => set.has(`${e.schema}.${e.table}`) || set.has(e.table);
}

interface Item { message: SinkMessage; event: ChangeEvent }

/** Runs until `signal` aborts (resolves) or a fatal error (throws SinkError / the feed's errors). */
export async function runSink(o: SinkRunOptions): Promise<void> {
  const selected = tableFilter(o.tables);
  let position = o.position;
  // Every lane's request or retry pause listens on the one signal.
  setMaxListeners(o.delivery.lanes * 2 + 16, o.signal);
  await o.sink.open();
  while (!o.signal.aborted) {
    const events = await readBatch(o, position);
    if (o.signal.aborted) return;
    if (!events.length) continue;
    const items: Item[] = [];
    for (const e of events) {
      if (e.op === Operation.Ddl || !selected(e)) continue;
      const id = messageId(o.feed.name, e.sequence);
      items.push({ event: e, message: { id, feed: o.feed.name, sequence: e.sequence, key: orderingKey(e), schema: e.schema, table: e.table, op: e.op, body: encodeChange(o.format, e, id, o.feed.name), contentType: CONTENT_TYPE[o.format] } });
    }
    const { delivered, dead } = await deliverBatch(o, items);
    if (o.signal.aborted) return;
    if (dead.length) await o.deadLetter(dead);
    position = events.at(-1)!.sequence;
    await o.checkpoint({ position, delivered, deadLettered: dead.length, lastCommitTime: lagClockOf(events.at(-1)!) });
  }
}

async function readBatch(o: SinkRunOptions, since: string | null) {
  const { batchSize, lingerMs } = o.delivery;
  const first = await o.feed.readBlocking(since, batchSize, 1000, o.signal);
  if (first.length === 0 || first.length >= batchSize || lingerMs <= 0) return first;
  await sleep(lingerMs, undefined, { signal: o.signal }).catch(() => undefined);
  if (o.signal.aborted) return first;
  return first.concat(await o.feed.read(first.at(-1)!.sequence, batchSize - first.length));
}

async function deliverBatch(o: SinkRunOptions, items: Item[]): Promise<{ delivered: number; dead: DeadLetter[] }> {
  const blocked = items.length ? await o.blockedKeys() : new Set<string>();
  const lanes = new Map<number, Item[]>();
  for (const it of items) {
    const n = laneOf(it.message.key, o.delivery.lanes);
    let l = lanes.get(n);
    if (!l) lanes.set(n, (l = []));
    l.push(it);
  }
  const dead: DeadLetter[] = [];
  let delivered = 0;
  await Promise.all([...lanes.values()].map(async (lane) => {
    const r = await deliverLane(o, lane, blocked);
    delivered += r.delivered; dead.push(...r.dead);
  }));
  return { delivered, dead };
}

/** Calls of at most maxBatch messages, in order; for non-atomic sinks no key twice in one call. */
function chunks(sink: Sink, items: Item[]): Item[][] {
  const out: Item[][] = [];
  let cur: Item[] = []; let keys = new Set<string>();
  for (const it of items) {
    if (cur.length >= sink.maxBatch || (!sink.atomicBatches && keys.has(it.message.key))) { out.push(cur); cur = []; keys = new Set(); }
    cur.push(it); keys.add(it.message.key);
  }
  if (cur.length) out.push(cur);
  return out;
}

async function deliverLane(o: SinkRunOptions, lane: Item[], blocked: Set<string>): Promise<{ delivered: number; dead: DeadLetter[] }> {
  const dead: DeadLetter[] = [];
  let delivered = 0;
  const bury = (it: Item, error: string, attempts: number) => {
    if (o.delivery.onFailure === SinkFailurePolicy.Stop) throw new SinkStoppedError(`message ${it.message.id} (${it.message.key}) not delivered after ${attempts} attempt(s): ${error}`);
    blocked.add(it.message.key);
    dead.push({ message: it.message, event: it.event, error, attempts });
  };
  const live = lane.filter((it) => {
    if (!blocked.has(it.message.key)) return true;
    bury(it, 'behind an earlier dead-lettered message of the same key', 0);
    return false;
  });
  for (const chunk of chunks(o.sink, live)) {
    if (o.signal.aborted) break;
    const todo = chunk.filter((it) => !blocked.has(it.message.key));
    for (const it of chunk) if (blocked.has(it.message.key)) bury(it, 'behind an earlier dead-lettered message of the same key', 0);
    if (!todo.length) continue;
    const r = await attempt(o, todo);
    if (r.ok) { delivered += todo.length; continue; }
    if (todo.length === 1 || r.retriable) { for (const it of todo) bury(it, r.error, r.attempts); continue; }
    // The target refused the call: find the refused message(s) one by one.
    for (const it of todo) {
      if (blocked.has(it.message.key)) { bury(it, 'behind an earlier dead-lettered message of the same key', 0); continue; }
      const one = await attempt(o, [it]);
      if (one.ok) delivered++; else bury(it, one.error, one.attempts);
    }
  }
  return { delivered, dead };
}

type Attempt = { ok: true } | { ok: false; retriable: boolean; error: string; attempts: number };

async function attempt(o: SinkRunOptions, items: Item[]): Promise<Attempt> {
  const messages = items.map((it) => it.message);
  for (let n = 1; ; n++) {
    try {
      await o.sink.deliver(messages, o.signal);
      return { ok: true };
    } catch (err) {
      const e = asSinkError(err);
      if (e.fatal) throw e;
      if (o.signal.aborted) throw e;
      if (!e.retriable || n >= o.delivery.maxAttempts) return { ok: false, retriable: e.retriable, error: e.message, attempts: n };
      const delayMs = retryDelay(n, o.delivery, o.random);
      o.onRetry?.({ error: e.message, attempt: n, delayMs, messages: messages.length, oldestCommitTime: lagClockOf(items[0]!.event) });
      await sleep(delayMs, undefined, { signal: o.signal }).catch(() => undefined);
      if (o.signal.aborted) throw e;
    }
  }
}
