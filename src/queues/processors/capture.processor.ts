/**
 * The capture task (Udup "Src"): prepare the source (slot/publication), plan
 * and launch the snapshot flow when the job wants one, hold the exported
 * snapshot until the chunks are done, then stream into the job's feed from
 * the feed's own resume position. Migration jobs stop once caught up with the
 * position at which the snapshot ended.
 */
import { FlowProducer, type ConnectionOptions } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SourcePosition } from '../../replication/change-event.ts';
import type { DbConnectionConfig } from '../../replication/connection-config.ts';
import type { JobRow } from '../../store/job.repo.ts';
import { createApplier, createCapture, createSnapshotReader } from '../../replication/factory.ts';
import type { ChangeFeed } from '../../replication/feed/change-feed.ts';
import { openFeed } from '../../replication/feed/feed-registry.ts';
import { runCapture, type CaptureOutcome } from '../../replication/pipeline/capture-runner.ts';
import { parseStartPosition } from '../../replication/position.ts';
import { ZERO_SEQUENCE } from '../../replication/sequence.ts';
import { DEFAULT_HEARTBEAT_SECONDS, JobType, LogLossAction, wantsSnapshot, type JobRunState } from '../../domain/job-model.ts';
import { QueueName, SHARED_POOL } from '../queue-names.ts';
import { TaskOptions, taskJobId } from '../task-enqueue.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import type { TaskProcessor } from '../worker-host.ts';
import { SNAPSHOT_POLL_MS, TaskRun, type ReplicationDeps } from './task-run.ts';
import type { CaptureSource } from '../../replication/capture/capture-source.ts';
import { snapshotChunkId } from '../../replication/snapshot/snapshot-cover.ts';
import { FatalError, LogLostError } from '../../replication/errors.ts';
import { resetDestination, restartAfterLogLoss } from './log-loss.ts';
import { TaskKind, TaskState } from '../../domain/task-model.ts';
import { feedKeys, inflightKey } from '../../replication/feed/feed-keys.ts';
import type { CapturedTransaction } from '../../replication/change-event.ts';
import { FeedReplacedError } from '../../replication/feed/feed-errors.ts';
import { startIncrementalSnapshots } from './incremental-snapshots.ts';
import { jobControls } from './job-controls.ts';
import { roomOrTimeout } from './room-signal.ts';

const RETENTION_INTERVAL_MS = 30_000;
/**
 * How long after a feed append a PostgreSQL slot may be told the transaction
 * is safe. Redis with appendfsync everysec (the recommended AOF setting)
 * loses up to about a second of writes when it is killed; the slot cannot
 * be rewound, so it must not be ahead of what Redis has on disk. A MariaDB
 * capture needs no delay: it re-reads the binlog from the feed's own resume
 * position, which a Redis crash rolls back together with the lost appends.
 */
const FEED_DURABLE_MS = 2500;

export function captureProcessor(deps: ReplicationDeps): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const run = await TaskRun.begin(p, ctx, deps);
    if (!run) return { skipped: 'job not running in this run' };
    const job = run.job;
    const source = await deps.connections.config(job.source_connection_id!);
    const feed = openFeed(deps.redis, job.feed_name!, { prefix: deps.feedPrefix });
    let capture: CaptureSource | undefined;
    try {
      const opened = await createJobCapture(run, deps, job, source, feed);
      capture = opened.capture;
      const { prepared, startPosition } = await prepareJobCapture(run, deps, job, opened.capture, opened.from);
      const state = await awaitSnapshot(run, deps, job, opened.capture, prepared.snapshotName);
      if (state === 'aborted') return await run.endAborted();
      const target = await migrationTarget(run, deps, job, opened.capture, state);
      if (state.captureDone) return { done: true };
      await deps.jobs.mergeProgress(job.id, { phase: job.type === JobType.Migration ? 'catching-up' : 'streaming' });
      const outcome = await streamIntoFeed(run, deps, job, opened.capture, feed, { from: opened.resume ?? startPosition, target });
      if (outcome === 'reached-target') return await finishMigrationCapture(run, deps, job);
      return await run.endAborted();
    } catch (err) {
      run.finish();
      if (err instanceof LogLostError && job.spec.onLogLoss === LogLossAction.Resnapshot && !run.signal.aborted) {
        return await restartAfterLogLoss(run, deps, feed, err);
      }
      if (run.signal.aborted && !(err instanceof FatalError)) return await run.endAborted();
      return await run.fail(err);
    } finally {
      run.finish();
      await capture?.close().catch(() => undefined);
      await (feed as unknown as { close?: () => Promise<void> }).close?.();
    }
  };
}

/**
 * The job's log reader, starting from the feed's resume position, else the
 * run's recorded start, else the configured one (not after a log loss: a run
 * started over begins at the source's current position).
 */
async function createJobCapture(run: TaskRun, deps: ReplicationDeps, job: JobRow, source: DbConnectionConfig, feed: ChangeFeed): Promise<{ capture: CaptureSource; resume: SourcePosition | null; from: SourcePosition | undefined }> {
  const resume = await feed.resumePosition();
  const configured = job.spec.startPosition && !job.state.resnapshot ? parseStartPosition(source.kind, job.spec.startPosition) : undefined;
  const from = resume ?? (job.state.startPosition as SourcePosition | undefined) ?? configured;
  const capture = createCapture({
    connection: source, jobId: job.id, tables: job.spec.tables, from, selectorColumn: job.spec.selectorColumn, logger: run.logger,
    // Resuming once the feed or the job recorded a position: a PostgreSQL slot found missing then was dropped (fatal).
    resuming: resume !== null || job.state.startPosition !== undefined,
    ackDelayMs: FEED_DURABLE_MS,
    heartbeatMs: (job.spec.heartbeatIntervalSeconds ?? DEFAULT_HEARTBEAT_SECONDS) * 1000,
  });
  return { capture, resume, from };
}

/** Prepare the source (slot, publication, binlog checks) and record where this run's stream starts. */
async function prepareJobCapture(run: TaskRun, deps: ReplicationDeps, job: JobRow, capture: CaptureSource, from: SourcePosition | undefined) {
  const prepared = await capture.prepare();
  const startPosition = from ?? prepared.position;
  if (!job.state.startPosition) {
    await deps.jobs.mergeState(job.id, run.payload.runId, { startPosition });
    await run.log('info', `capture starts at ${JSON.stringify(startPosition)}`);
  }
  await deps.jobs.updateTask(run.payload.taskId, { position: startPosition });
  return { prepared, startPosition };
}

/**
 * When this run copies the tables: plan the snapshot (once), then keep the
 * capture prepared and idle while the chunks read (PostgreSQL's exported
 * snapshot lives as long as it), and fix a migration's catch-up target.
 * 'aborted' when the task was told to stop meanwhile.
 */
async function awaitSnapshot(run: TaskRun, deps: ReplicationDeps, job: JobRow, capture: CaptureSource, snapshotName: string | undefined): Promise<JobRunState | 'aborted'> {
  let state: JobRunState = (await run.check())?.state ?? job.state;
  if (!wantsSnapshot(job.spec, state) || state.snapshotDone || job.type === JobType.Subscribe) return state;
  if (!state.snapshotPlanned) await planSnapshot(run, deps, snapshotName);
  while (!run.signal.aborted) {
    const j = await run.check();
    if (!j) break;
    state = j.state;
    if (state.snapshotDone) break;
    // A tenth of a second between looks: a migration's capture catches up (and the job completes) that soon
    // after the last chunk (it was half a second, a sixth of a 1M-row migration in the snapshot bench).
    await sleep(SNAPSHOT_POLL_MS, undefined, { signal: run.signal }).catch(() => undefined);
  }
  if (run.signal.aborted) return 'aborted';
  if (job.type === JobType.Migration && !state.snapshotEndPosition) {
    const end = await capture.currentPosition();
    await deps.jobs.mergeState(job.id, run.payload.runId, { snapshotEndPosition: end });
    state = { ...state, snapshotEndPosition: end };
  }
  return state;
}

/** Where a migration's capture stops (the snapshot's end position, or now when it took none); undefined for other jobs. */
async function migrationTarget(run: TaskRun, deps: ReplicationDeps, job: JobRow, capture: CaptureSource, state: JobRunState): Promise<SourcePosition | undefined> {
  let target: SourcePosition | undefined = state.snapshotEndPosition as SourcePosition | undefined;
  if (job.type === JobType.Migration && !target) {
    target = await capture.currentPosition();
    await deps.jobs.mergeState(job.id, run.payload.runId, { snapshotEndPosition: target });
  }
  return target;
}

/**
 * Stream committed transactions into the job's feed until aborted (or, for a
 * migration, until `target`): metrics and the task's position flushed every
 * second, feed retention kept, the in-flight counter bounding what apply has
 * not read yet (ReplChanBufferSize), appends only to the feed this task started on.
 */
const TRACE = !!process.env.TRIB_TRACE;

async function streamIntoFeed(
  run: TaskRun, deps: ReplicationDeps, job: JobRow, capture: CaptureSource, feed: ChangeFeed, at: { from: SourcePosition; target: SourcePosition | undefined },
): Promise<CaptureOutcome> {
  const base = { changes: Number(job.metrics.changesCaptured ?? 0), bytes: Number(job.metrics.bytesCaptured ?? 0) };
  let changes = 0; let bytes = 0; let lastSeq: string | undefined; let lastPos: SourcePosition | undefined; let lastCommitAt: string | undefined;
  const counterKey = inflightKey(deps.feedPrefix, job.id);
  const flush = async () => {
    await deps.jobs.mergeMetrics(job.id, { changesCaptured: base.changes + changes, bytesCaptured: base.bytes + bytes, capturedSequence: lastSeq, capturedPosition: lastPos, ...(lastCommitAt ? { lastCommitAt } : {}) });
    if (lastPos) await deps.jobs.updateTask(run.payload.taskId, { position: lastPos });
    const fresh = await deps.jobs.get(job.id);
    if (fresh) { run.job = fresh; run.publishJob('metrics'); }
  };
  const flusher = setInterval(() => { flush().catch(() => undefined); }, 1000);
  const hasApply = job.type !== JobType.Subscribe;
  // Starts at the bound, so the first transaction reads the real count.
  let inflightRead = job.spec.replChanBufferSize; let appendedSinceRead = 0;
  // `feed-appended` at most every 50 ms, with the newest position (a publish per small transaction cost Redis more than the append).
  let announceTimer: NodeJS.Timeout | undefined;
  const announce = () => {
    announceTimer ??= setTimeout(() => {
      announceTimer = undefined;
      deps.publish(`feed-appended:${job.feed_name}`, { feed: job.feed_name, last: lastSeq });
    }, 50);
  };
  // The in-flight counter goes up with each append, inside the append script (ChangeFeed countInto): at
  // 5,000 single-row transactions/s a command of its own per append was a socket write and a wake-up of
  // Redis each (issue 12). Incremental-snapshot chunks appended through the same feed count too: the
  // apply counts them down like any transaction.
  const retainer = await keepRetention(run, deps, job, feed, hasApply);
  const guarded = await guardFeedGeneration(run, deps, job, feed, hasApply ? counterKey : undefined);
  // Migrations end with their catch-up; incremental snapshots belong to streaming jobs.
  const snapshots = job.type === JobType.Migration ? undefined : await startIncrementalSnapshots(run, deps, job, guarded, at.from, run.signal);
  const source = await deps.connections.config(job.source_connection_id!);
  const controls = await jobControls(deps, job, source);
  try {
    return await runCapture({
      snapshotter: snapshots?.snapshotter,
      capture, feed: guarded, signal: run.signal,
      transform: controls ? (tx) => controls.transaction(tx) : undefined,
      msgsLimit: job.spec.msgsLimit, bytesLimit: Math.max(job.spec.bytesLimit, job.spec.msgBytesLimit),
      // ReplChanBufferSize: transactions appended but not yet applied.
      // Redis is asked only when the count last read plus what was appended since could reach the bound
      // (apply only lowers it): one round trip per transaction less for small transactions (issue 12).
      waitForRoom: hasApply ? async (signal) => {
        const bound = job.spec.replChanBufferSize;
        if (inflightRead + appendedSinceRead < bound) return bound - inflightRead - appendedSinceRead;
        const t0 = TRACE ? performance.now() : 0;
        for (;;) {
          inflightRead = Number(await deps.redis.get(counterKey) ?? 0);
          if (TRACE) process.stderr.write(`[trace ${(performance.now() / 1000).toFixed(3)}] room inflight=${inflightRead} bound=${bound} waited=${(performance.now() - t0).toFixed(1)}\n`);
          appendedSinceRead = 0;
          if (signal.aborted || inflightRead < bound) return Math.max(1, bound - inflightRead);
          // An apply in this process wakes this wait as it releases room (room-signal.ts); one elsewhere, the poll.
          await roomOrTimeout(counterKey, 20);
        }
      } : undefined,
      onAppended: ({ tx, added, bytes: b }) => {
        if (added > 0) {
          changes += added; bytes += b;
          deps.metrics?.changesCaptured.inc({ job: job.name }, added);
          // ReplChanBufferSize counts transactions: a large one's pieces count once, with its last piece.
          if (hasApply && !tx.partial) appendedSinceRead++;
          lastSeq = tx.events.at(-1)?.sequence ?? lastSeq;
          if (tx.commitTime) lastCommitAt = new Date(tx.commitTime).toISOString();
          announce();
        }
        if (!tx.partial) lastPos = tx.resume;
      },
      stopAt: job.type === JobType.Migration ? () => at.target : undefined,
      from: at.from,
    });
  } finally {
    await snapshots?.stop();
    clearInterval(flusher);
    clearInterval(retainer);
    if (announceTimer) { clearTimeout(announceTimer); announceTimer = undefined; deps.publish(`feed-appended:${job.feed_name}`, { feed: job.feed_name, last: lastSeq }); }
    await flush().catch(() => undefined);
  }
}

/**
 * Feed retention by count and age, now and then on a timer (returned, for
 * clearInterval); a job that applies never loses what its apply has not read yet.
 */
async function keepRetention(run: TaskRun, deps: ReplicationDeps, job: JobRow, feed: ChangeFeed, hasApply: boolean): Promise<ReturnType<typeof setInterval>> {
  const retain = async () => {
    const fresh = await deps.jobs.get(job.id);
    const removed = await feed.trim({
      maxChanges: job.spec.feedMaxChanges ?? deps.retention.maxChanges,
      maxAgeMs: job.spec.feedMaxAgeSeconds ? job.spec.feedMaxAgeSeconds * 1000 : deps.retention.maxAgeMs,
      keepAfter: hasApply ? (fresh?.metrics.appliedSequence ?? ZERO_SEQUENCE) : undefined,
    });
    if (removed > 0) run.logger.debug({ removed }, 'feed retention trimmed changes');
  };
  await retain().catch((err) => run.logger.warn({ err }, 'feed retention failed'));
  // A short age limit is enforced about as often as it is long (a few seconds' retention drops within seconds).
  const maxAgeMs = job.spec.feedMaxAgeSeconds ? job.spec.feedMaxAgeSeconds * 1000 : deps.retention.maxAgeMs;
  const retainEvery = Math.min(RETENTION_INTERVAL_MS, Math.max(1000, Math.floor(maxAgeMs / 4)));
  return setInterval(() => { retain().catch((err) => run.logger.warn({ err }, 'feed retention failed')); }, retainEvery);
}

/**
 * The feed, appending only while it is the one this task started on (see
 * feedGeneration): a job deleted and created again under the same name has a
 * new feed, which this task's stream must not reach.
 */
async function guardFeedGeneration(run: TaskRun, deps: ReplicationDeps, job: JobRow, feed: ChangeFeed, countInto?: string): Promise<ChangeFeed> {
  // The feed's generation travels with every append and is checked by the append script itself:
  // no round trip of its own per transaction (issue 12), and no window between check and write.
  const meta = feedKeys(deps.feedPrefix, job.feed_name!).meta;
  let born: string | null = await deps.redis.hget(meta, 'createdAt');
  const replaced = (name: string) => {
    run.logger.warn({ feed: name }, 'feed replaced (job deleted, a job of the same name created): this capture task stops');
    run.abortForJobChange();
    return new Error(`feed ${name} was replaced (job deleted, a job of the same name created): this capture task stops`);
  };
  return new Proxy(feed, {
    get(target, prop) {
      if (prop === 'append' || prop === 'appendMany') {
        if (prop === 'appendMany' && !target.appendMany) return undefined;
        return async (tx: CapturedTransaction | CapturedTransaction[]) => {
          for (;;) {
            try {
              const opts = { ...(born === null ? {} : { generation: born }), ...(countInto ? { countInto } : {}) };
              const added = Array.isArray(tx) ? await target.appendMany!(tx, opts) : await target.append(tx, opts);
              if (born === null) born = await deps.redis.hget(meta, 'createdAt');
              return added;
            } catch (err) {
              if (!(err instanceof FeedReplacedError)) throw err;
              // Created again: go on only while this task is still its job's (the job was not deleted).
              if (!(await run.check())) throw replaced(target.name);
              born = err.createdAt;
            }
          }
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** A migration's capture caught up with the snapshot's end: its part is done. */
async function finishMigrationCapture(run: TaskRun, deps: ReplicationDeps, job: JobRow): Promise<{ caughtUp: true }> {
  await deps.jobs.mergeState(job.id, run.payload.runId, { captureDone: true });
  await run.log('info', 'migration capture caught up with the snapshot end position');
  await deps.jobs.updateTask(run.payload.taskId, { status: TaskState.Complete });
  run.finish();
  return { caughtUp: true };
}

/** List tables, create them at the destination, split into chunks, and launch one BullMQ flow: a parent waiting on one child per chunk. */
async function planSnapshot(run: TaskRun, deps: ReplicationDeps, snapshotName: string | undefined): Promise<void> {
  const job = run.job;
  const source = await deps.connections.config(job.source_connection_id!);
  const dest = await deps.connections.config(job.dest_connection_id!);
  const reader = createSnapshotReader(source, run.logger);
  const applier = createApplier(dest, { jobId: job.id, rename: job.spec.rename, logger: run.logger });
  try {
    // Chunks and their parent run where this capture task was placed (a cluster's queue or the shared pool).
    const own = await deps.jobs.task(run.payload.taskId);
    const queue = own?.queue ?? QueueName.Tasks;
    const placement = own?.placement ?? SHARED_POOL;
    const tables = await reader.listTables(job.spec.tables);
    // Column controls shape the destination: excluded columns are not created, masked and hashed ones are text.
    const controls = await jobControls(deps, job, source);
    for (const t of tables) await applier.ensureTable(controls?.forTable(t)?.shapeTable(t) ?? t);
    // After a log loss: the destination is emptied and its lanes moved past the loss first.
    if (!(await resetDestination(run, applier, tables))) return;
    const children = [];
    let estimated = 0;
    for (const t of tables) {
      estimated += t.estimatedRows;
      const chunks = await reader.planChunks(t, job.spec.chunkRows, { evenRanges: true });
      for (const chunk of chunks) {
        const chunkId = snapshotChunkId(t.schema, t.table, chunk.index);
        const task = await deps.jobs.upsertTask({ jobId: job.id, kind: TaskKind.SnapshotChunk, name: `chunk ${chunkId}`, status: TaskState.Queued, queue, placement, detail: { chunkId } });
        const payload: JobTaskPayload = { kind: TaskKind.SnapshotChunk, taskId: task.id, jobId: job.id, runId: run.payload.runId, detail: { table: t, chunk, chunkId, snapshotName } };
        children.push({ name: TaskKind.SnapshotChunk, queueName: queue, data: payload, opts: { ...TaskOptions.replication, jobId: taskJobId(task.id, run.payload.runId) } });
      }
    }
    const parent = await deps.jobs.upsertTask({ jobId: job.id, kind: TaskKind.Snapshot, name: 'snapshot', status: TaskState.Queued, queue, placement, detail: { tables: tables.length, chunks: children.length } });
    const parentPayload: JobTaskPayload = { kind: TaskKind.Snapshot, taskId: parent.id, jobId: job.id, runId: run.payload.runId };
    await deps.jobs.mergeProgress(job.id, { phase: 'snapshot', rowsEstimated: estimated, rowsDone: 0, chunksTotal: children.length, chunksDone: 0, startedAt: new Date().toISOString() });
    await deps.jobs.mergeState(job.id, run.payload.runId, { snapshotPlanned: true, snapshotName });
    const flow = new FlowProducer({ connection: deps.queues.connection as unknown as ConnectionOptions, prefix: deps.queues.prefix });
    try {
      await flow.add({ name: TaskKind.Snapshot, queueName: queue, data: parentPayload, opts: { ...TaskOptions.replication, jobId: taskJobId(parent.id, run.payload.runId) }, children });
    } finally {
      await flow.close();
    }
    await run.log('info', `snapshot planned: ${tables.length} tables, ${children.length} chunks, about ${estimated} rows`);
  } finally {
    await reader.close().catch(() => undefined);
    await applier.close().catch(() => undefined);
  }
}
