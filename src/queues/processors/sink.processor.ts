/**
 * The sink task: one long-running BullMQ task per sink run, on any worker.
 * It reads the sink's feed from the stored checkpoint and delivers through
 * replication/sinks/sink-runner.ts. A worker that dies mid-batch leaves the
 * checkpoint before that batch: the task resumes there on another worker
 * (stalled-job recovery) and re-sends the batch with the same message ids.
 * It ends quietly when the sink is paused, deleted or moved to a newer run.
 */
import { UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import { SinkStatus, type SinkEvent } from '../../domain/sink-model.ts';
import { Topic, topicFor } from '../../events/pubsub.ts';
import { maskSecrets, type Logger } from '../../observability/logger.ts';
import { SnapshotTooOldError } from '../../replication/feed/change-feed.ts';
import { openFeed } from '../../replication/feed/feed-registry.ts';
import { SinkError } from '../../replication/sinks/sink.ts';
import { createSinkClient } from '../../replication/sinks/sink-registry.ts';
import { runSink, type SinkRunOptions } from '../../replication/sinks/sink-runner.ts';
import type { SinkRepo, SinkRow } from '../../store/sink.repo.ts';
import type { SinkTaskPayload } from '../task-payloads.ts';
import type { TaskContext, TaskProcessor } from '../worker-host.ts';

export interface SinkTaskDeps {
  sinks: SinkRepo;
  redis: Redis;
  feedPrefix: string;
  publish: (topic: string, payload: unknown) => void;
  logger: Logger;
  /** SINK_ALLOWED_HOSTS */
  allowedHosts: readonly string[];
}

/** The sink task of a run stopped because its worker is shutting down: BullMQ runs it again (elsewhere). */
export class SinkTaskInterruptedError extends Error {
  override readonly name = 'SinkTaskInterruptedError';
  constructor() { super('sink task interrupted (worker shutdown); it resumes from its checkpoint'); }
}

export function sinkEvent(row: SinkRow, kind: SinkEvent['kind'], message: string | null = null): SinkEvent {
  return {
    sinkId: row.id, kind, status: row.status, position: row.position, delivered: Number(row.delivered), failed: Number(row.failed),
    lagMs: row.lag_ms === null ? null : Number(row.lag_ms), message, at: new Date().toISOString(),
  };
}

type Hooks = Pick<SinkRunOptions, 'blockedKeys' | 'deadLetter' | 'checkpoint' | 'onRetry'>;

/**
 * What the runner's callbacks do in the task: dead letters and checkpoints go
 * to the store (a checkpoint refused because the run moved on stops the
 * task), progress is published at most about once a second, retries are
 * logged and noted on the sink.
 */
function storeHooks(deps: SinkTaskDeps, ctx: TaskContext, row: SinkRow, runId: number, controller: AbortController): Hooks {
  const publish = (r: SinkRow, kind: SinkEvent['kind'], message: string | null = null) => deps.publish(topicFor(Topic.SinkEvents, r.id), sinkEvent(r, kind, message));
  let lastPublished = 0; let lastRetryNote = 0;
  return {
    blockedKeys: () => deps.sinks.blockedKeys(row.id),
    deadLetter: async (letters) => {
      await deps.sinks.addDeadLetters(row.id, letters);
      ctx.logger.warn({ sink: row.name, count: letters.length, first: letters[0]!.message.id }, 'sink dead-lettered messages');
      publish(row, 'dead-lettered', `${letters.length} message(s) dead-lettered, first ${letters[0]!.message.id}: ${maskSecrets(letters[0]!.error)}`);
    },
    checkpoint: async (c) => {
      const lagMs = Math.max(0, Date.now() - c.lastCommitTime);
      if (!(await deps.sinks.checkpoint(row.id, runId, { position: c.position, delivered: c.delivered, failed: c.deadLettered, lagMs }))) { controller.abort(); return; }
      if (Date.now() - lastPublished < 1000) return;
      lastPublished = Date.now();
      const now = await deps.sinks.get(row.id);
      if (now) publish(now, 'progress');
    },
    onRetry: (i) => {
      const message = maskSecrets(i.error);
      ctx.logger.warn({ sink: row.name, attempt: i.attempt, delayMs: i.delayMs, err: message }, 'sink delivery failed; retrying');
      if (Date.now() - lastRetryNote < 1000) return;
      lastRetryNote = Date.now();
      // The lag keeps growing while a call is stuck (a target that is down), not only at checkpoints.
      const lagMs = Math.max(0, Date.now() - i.oldestCommitTime);
      deps.sinks.setError(row.id, runId, `retrying (attempt ${i.attempt}): ${message}`, lagMs).catch(() => undefined);
      publish(row, 'retry', message);
    },
  };
}

const isCurrent = (row: SinkRow | undefined, runId: number): row is SinkRow => !!row && row.run_id === runId && row.status === SinkStatus.Running;

export function sinkProcessor(deps: SinkTaskDeps): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as SinkTaskPayload;
    const row = await deps.sinks.get(p.sinkId);
    if (!isCurrent(row, p.runId)) return { skipped: 'sink not running in this run' };
    const controller = new AbortController();
    let shutdown = false;
    const onAbort = () => { shutdown = true; controller.abort(); };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (ctx.signal.aborted) onAbort();
    const watch = setInterval(() => {
      deps.sinks.get(p.sinkId).then((r) => { if (!isCurrent(r, p.runId)) controller.abort(); }).catch(() => undefined);
    }, 1000);
    const feed = openFeed(deps.redis, row.feed, { prefix: deps.feedPrefix });
    let sink;
    try {
      sink = createSinkClient(row.kind, row.config, await deps.sinks.secrets(row.id), { format: row.format, allowedHosts: deps.allowedHosts });
      await runSink({
        feed, sink, format: row.format, tables: row.tables, delivery: row.delivery, position: row.position, signal: controller.signal,
        ...storeHooks(deps, ctx, row, p.runId, controller),
      });
      return await ended(deps, p, shutdown);
    } catch (err) {
      if (controller.signal.aborted) return await ended(deps, p, shutdown);
      const message = maskSecrets((err as Error).message);
      if (err instanceof SnapshotTooOldError || (err instanceof SinkError && !err.retriable)) {
        const failed = await deps.sinks.fail(row.id, p.runId, message);
        ctx.logger.error({ sink: row.name, err: message }, 'sink failed');
        if (failed) deps.publish(topicFor(Topic.SinkEvents, failed.id), sinkEvent(failed, 'status', message));
        throw new UnrecoverableError(message);
      }
      await deps.sinks.setError(row.id, p.runId, `retrying: ${message}`).catch(() => undefined);
      ctx.logger.warn({ sink: row.name, err: message }, 'sink task interrupted; retrying');
      throw new Error(message);
    } finally {
      clearInterval(watch);
      ctx.signal.removeEventListener('abort', onAbort);
      await sink?.close().catch(() => undefined);
      await feed.close().catch(() => undefined);
    }
  };
}

/** After an abort: the sink moved on (paused, deleted, new run) -> done; worker shutdown -> BullMQ runs the task again. */
async function ended(deps: SinkTaskDeps, p: SinkTaskPayload, shutdown: boolean): Promise<{ stopped: string }> {
  const row = await deps.sinks.get(p.sinkId);
  if (shutdown && isCurrent(row, p.runId)) throw new SinkTaskInterruptedError();
  return { stopped: row ? row.status : 'deleted' };
}
