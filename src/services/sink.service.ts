/**
 * Sinks: create, pause, resume, delete, read, and the dead-letter list
 * (read, replay, drop). A sink runs as one BullMQ task per run (see
 * queues/processors/sink.processor.ts); pause and delete end it within about
 * a second, resume starts a new run from the stored checkpoint.
 */
import type { Queue } from 'bullmq';
import { AppError, ErrorCode, badInput, notFound } from '../errors.ts';
import {
  DEFAULT_DELIVERY, messageId, SINK_NAME_RE, SINK_TRANSITIONS, SinkFailurePolicy, SinkFormat, SinkKind, SinkStatus,
  type SinkDelivery, type SinkEvent,
} from '../domain/sink-model.ts';
import { Topic, topicFor, type AppPubSub } from '../events/pubsub.ts';
import { currentThenLive } from '../events/live.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import { QueueName } from '../queues/queue-names.ts';
import { TaskOptions } from '../queues/task-enqueue.ts';
import type { SinkTaskPayload } from '../queues/task-payloads.ts';
import { sinkEvent } from '../queues/processors/sink.processor.ts';
import type { DeadLetterRow, SinkRepo, SinkRow } from '../store/sink.repo.ts';
import { openFeed, validateFeedName } from '../replication/feed/feed-registry.ts';
import { compareSequences, parseSequence } from '../replication/sequence.ts';
import type { Redis } from 'ioredis';
import { CONTENT_TYPE, encodeChange } from '../replication/sinks/formats/sink-formats.ts';
import { SinkError, type Sink, type SinkMessage } from '../replication/sinks/sink.ts';
import { createSinkClient, parseSinkConfig, SinkConfigInvalidError } from '../replication/sinks/sink-registry.ts';
import { orderingKey } from '../replication/sinks/sink-runner.ts';
import { TaskKind } from '../domain/task-model.ts';
import { UniqueViolationError } from '../store/store-errors.ts';


export interface SinkInputData {
  name: string;
  feed: string;
  kind: SinkKind;
  format?: SinkFormat | null;
  /** Kind-specific settings; secret ones (webhook `secret`, broker `password`/`token`) are split off and encrypted. */
  config: Record<string, unknown>;
  tables?: string[] | null;
  /** A feed sequence to start after; null = the oldest retained change; "now" = only changes appended from now on. */
  since?: string | null;
  delivery?: Partial<SinkDelivery> | null;
}

export interface ReplayResult { delivered: number; failed: number; remaining: number; errors: string[] }

export interface SinkServiceOptions {
  repo: SinkRepo;
  queues: QueueSet;
  pubSub: AppPubSub;
  publish: (topic: string, payload: unknown) => void;
  redis: Redis;
  feedPrefix: string;
  allowedHosts: readonly string[];
}

const LIMITS: Record<keyof Omit<SinkDelivery, 'onFailure'>, [number, number]> = {
  batchSize: [1, 10_000], lingerMs: [0, 10_000], lanes: [1, 1024], maxAttempts: [1, 1000], backoffMs: [1, 600_000], maxBackoffMs: [1, 3_600_000],
};

function delivery(input: Partial<SinkDelivery> | null | undefined): SinkDelivery {
  const d: SinkDelivery = { ...DEFAULT_DELIVERY };
  for (const [k, v] of Object.entries(input ?? {})) {
    if (v === undefined || v === null) continue;
    if (k === 'onFailure') {
      if (!Object.values(SinkFailurePolicy).includes(v as SinkFailurePolicy)) throw badInput('delivery.onFailure must be CONTINUE or STOP', 'delivery.onFailure');
      d.onFailure = v as SinkFailurePolicy; continue;
    }
    const range = LIMITS[k as keyof typeof LIMITS];
    if (!range) throw badInput(`unknown delivery setting ${k}`, `delivery.${k}`);
    if (!Number.isInteger(v) || (v as number) < range[0] || (v as number) > range[1]) throw badInput(`delivery.${k} must be an integer from ${range[0]} to ${range[1]}`, `delivery.${k}`);
    (d as unknown as Record<string, number>)[k] = v as number;
  }
  if (d.maxBackoffMs < d.backoffMs) throw badInput('delivery.maxBackoffMs must be at least backoffMs', 'delivery.maxBackoffMs');
  return d;
}

export class SinkService {
  constructor(private readonly o: SinkServiceOptions) {}

  get repo(): SinkRepo { return this.o.repo; }

  private queue(): Queue { return this.o.queues.get(QueueName.Tasks); }

  private client(kind: SinkKind, config: Record<string, unknown>, secrets: Record<string, unknown>, format: SinkFormat): Sink {
    try {
      return createSinkClient(kind, config, secrets, { format, allowedHosts: this.o.allowedHosts });
    } catch (err) {
      if (err instanceof SinkError) throw badInput(err.message, 'config');
      throw err;
    }
  }

  async create(input: SinkInputData): Promise<SinkRow> {
    if (!SINK_NAME_RE.test(input.name ?? '')) throw badInput(`name must match ${SINK_NAME_RE.source}`, 'name');
    try { validateFeedName(input.feed); } catch { throw badInput('feed must be a feed name (a job name or environmentId)', 'feed'); }
    const format = input.format ?? SinkFormat.Json;
    let parsed;
    try { parsed = parseSinkConfig(input.kind, input.config); } catch (err) {
      if (err instanceof SinkConfigInvalidError) throw badInput(err.message, 'config');
      throw err;
    }
    await this.client(input.kind, parsed.config, parsed.secrets, format).close();
    const tables = (input.tables ?? []).map((t) => t.trim()).filter(Boolean);
    let position: string | null = null;
    if (input.since === 'now') {
      const feed = openFeed(this.o.redis, input.feed, { prefix: this.o.feedPrefix });
      try { position = (await feed.bounds()).last; } finally { await feed.close(); }
    } else if (input.since) {
      try { parseSequence(input.since); } catch { throw badInput('since must be a feed sequence "<hi hex>.<lo hex>.<index hex>" or "now"', 'since'); }
      position = input.since;
    }
    let row: SinkRow;
    try {
      row = await this.o.repo.create({ name: input.name, feed: input.feed, kind: input.kind, format, config: parsed.config, secrets: parsed.secrets, tables, delivery: delivery(input.delivery), position });
    } catch (err) {
      if (err instanceof UniqueViolationError) throw new AppError(ErrorCode.Conflict, `a sink named "${input.name}" exists`, { field: 'name' });
      throw err;
    }
    await this.enqueue(row);
    return row;
  }

  private async enqueue(row: SinkRow): Promise<void> {
    const taskId = `sink-${row.id}-${row.run_id}`;
    const payload: SinkTaskPayload = { kind: TaskKind.Sink, taskId, sinkId: row.id, runId: row.run_id };
    await this.queue().add(TaskKind.Sink, payload, { ...TaskOptions.sink, jobId: taskId });
  }

  async get(idOrName: string): Promise<SinkRow> {
    const row = await this.o.repo.get(idOrName);
    if (!row) throw notFound('sink', idOrName);
    return row;
  }

  list(): Promise<SinkRow[]> { return this.o.repo.list(); }

  /** By id or name; undefined when there is none. */
  find(idOrName: string): ReturnType<SinkRepo['get']> { return this.o.repo.get(idOrName); }

  deadLetterCount(sinkId: string): ReturnType<SinkRepo['countDeadLetters']> { return this.o.repo.countDeadLetters(sinkId); }

  private async move(idOrName: string, op: 'pause' | 'resume', to: SinkStatus): Promise<SinkRow> {
    const row = await this.get(idOrName);
    const moved = await this.o.repo.transition(row.id, SINK_TRANSITIONS[op], to, { newRun: op === 'resume' });
    if (!moved) throw new AppError(ErrorCode.InvalidState, `sink ${row.name} is ${row.status}: cannot ${op}`, { status: row.status });
    this.o.publish(topicFor(Topic.SinkEvents, moved.id), sinkEvent(moved, 'status'));
    return moved;
  }

  pause(idOrName: string): Promise<SinkRow> { return this.move(idOrName, 'pause', SinkStatus.Paused); }

  async resume(idOrName: string): Promise<SinkRow> {
    const row = await this.move(idOrName, 'resume', SinkStatus.Running);
    await this.enqueue(row);
    return row;
  }

  /** The running task sees the row gone within about a second and stops; its dead letters go with it. */
  async delete(idOrName: string): Promise<boolean> {
    const row = await this.get(idOrName);
    await this.o.repo.delete(row.id);
    await this.queue().remove(`sink-${row.id}-${row.run_id}`).catch(() => undefined);
    return true;
  }

  async deadLetters(idOrName: string, limit = 100): Promise<{ sink: SinkRow; letters: DeadLetterRow[]; total: number }> {
    const sink = await this.get(idOrName);
    return { sink, letters: await this.o.repo.deadLetters(sink.id, { limit: Math.max(1, Math.min(limit, 10_000)) }), total: await this.o.repo.countDeadLetters(sink.id) };
  }

  async dropDeadLetters(idOrName: string, ids: string[] | null): Promise<number> {
    const sink = await this.get(idOrName);
    return this.o.repo.dropDeadLetters(sink.id, ids && ids.length ? this.ids(ids) : null);
  }

  private ids(ids: string[]): string[] {
    for (const id of ids) if (!/^\d{1,18}$/.test(id)) throw badInput(`dead letter id ${JSON.stringify(id)} is not a number`, 'ids');
    return ids;
  }

  /**
   * Deliver dead letters again (all, or `ids`), in feed order per key, one
   * attempt each, from this gateway. A delivered letter leaves the list; one
   * that fails stays, and so do the later letters of its key (their order is
   * kept). The sink task keeps parking a key's new messages while any
   * letter of that key remains, so nothing of a key overtakes its replay.
   */
  async replayDeadLetters(idOrName: string, ids: string[] | null): Promise<ReplayResult> {
    const row = await this.get(idOrName);
    // Feed order: a batch re-sent after a crash can park a key's earlier changes after its later ones.
    const letters = (await this.o.repo.deadLetters(row.id, { ids: ids && ids.length ? this.ids(ids) : undefined, limit: 10_000 }))
      .sort((a, b) => compareSequences(a.sequence, b.sequence));
    const sink = this.client(row.kind, row.config, await this.o.repo.secrets(row.id), row.format);
    const failedKeys = new Set<string>();
    const out: ReplayResult = { delivered: 0, failed: 0, remaining: 0, errors: [] };
    try {
      await sink.open().catch((err: Error) => { throw new AppError(ErrorCode.ConnectionFailed, `cannot reach the sink's target: ${err.message}`); });
      for (const l of letters) {
        const key = orderingKey(l.event);
        if (failedKeys.has(key)) { out.failed++; continue; }
        const id = messageId(row.feed, l.event.sequence);
        const message: SinkMessage = { id, feed: row.feed, sequence: l.event.sequence, key, schema: l.event.schema, table: l.event.table, op: l.event.op, body: encodeChange(row.format, l.event, id, row.feed), contentType: CONTENT_TYPE[row.format] };
        try {
          await sink.deliver([message]);
          await this.o.repo.dropDeadLetters(row.id, [l.id]);
          out.delivered++;
        } catch (err) {
          failedKeys.add(key); out.failed++;
          if (out.errors.length < 10) out.errors.push(`${id}: ${(err as Error).message}`);
        }
      }
    } finally {
      await sink.close().catch(() => undefined);
    }
    out.remaining = await this.o.repo.countDeadLetters(row.id);
    return out;
  }

  /** The sink's state now, then every event until the subscriber leaves. NOT_FOUND before the stream starts. */
  async events(idOrName: string): Promise<AsyncGenerator<SinkEvent>> {
    const row = await this.get(idOrName);
    return this.eventStream(row.id);
  }

  private async *eventStream(id: string): AsyncGenerator<SinkEvent> {
    const live = this.o.pubSub.subscribe(topicFor(Topic.SinkEvents, id)) as AsyncIterable<SinkEvent>;
    yield* currentThenLive(live, async () => {
      const now = await this.o.repo.get(id);
      return now ? sinkEvent(now, 'status') : undefined;
    });
  }
}
