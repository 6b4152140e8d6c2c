/**
 * The capture task's side of incremental snapshots: builds the
 * IncrementalSnapshotter over the job's feed, runs its request loop beside
 * the stream, and reports progress into job.progress and the job's events.
 */
import type { SourcePosition } from '../../replication/change-event.ts';
import { createApplier, createSnapshotReader } from '../../replication/factory.ts';
import type { ChangeFeed } from '../../replication/feed/change-feed.ts';
import { AppendLock, IncrementalSnapshotter } from '../../replication/pipeline/incremental-snapshot.ts';
import { IncrementalRequestStore, IncrementalStatus } from '../../replication/snapshot/incremental-request.ts';
import { incrementalProgress } from '../../replication/snapshot/incremental-progress.ts';
import { JobType } from '../../domain/job-model.ts';
import type { JobRow } from '../../store/job.repo.ts';
import type { TaskRun, ReplicationDeps } from './task-run.ts';

export interface RunningSnapshots {
  snapshotter: IncrementalSnapshotter;
  /** Resolves once the loop stopped and its connections are closed. */
  stop(): Promise<void>;
}

export async function startIncrementalSnapshots(
  run: TaskRun, deps: ReplicationDeps, job: JobRow, feed: ChangeFeed, from: SourcePosition, signal: AbortSignal,
): Promise<RunningSnapshots> {
  const source = await deps.connections.config(job.source_connection_id!);
  const reader = createSnapshotReader(source, run.logger);
  const hasDest = job.type !== JobType.Subscribe && !!job.dest_connection_id;
  const applier = hasDest ? createApplier(await deps.connections.config(job.dest_connection_id!), { jobId: job.id, rename: job.spec.rename, logger: run.logger, poolSize: 1 }) : undefined;
  const store = new IncrementalRequestStore(deps.redis, deps.feedPrefix, job.id);
  const snapshotter = new IncrementalSnapshotter({
    source: source.kind, feed, reader, store, lock: new AppendLock(), logger: run.logger.child({ component: 'incremental-snapshot' }),
    runId: run.payload.runId, captured: job.spec.tables, chunkRows: job.spec.chunkRows, fallbackResume: from,
    ensureTable: applier ? (t) => applier.ensureTable(t) : undefined,
    onProgress: async (req) => {
      const running = req.status === IncrementalStatus.Running || req.status === IncrementalStatus.Pending;
      const done = req.status === IncrementalStatus.Done;
      await deps.jobs.mergeProgress(job.id, {
        phase: running ? 'incremental-snapshot' : 'streaming',
        rowsDone: req.rowsDone, rowsEstimated: done ? req.rowsDone : Math.max(req.rowsEstimated, req.rowsDone),
        chunksDone: req.chunksDone, chunksTotal: req.chunksTotal, startedAt: req.createdAt,
        incrementalSnapshot: incrementalProgress(req),
      });
      if (!running) await run.log(done ? 'info' : 'warn', `incremental snapshot ${req.id} ${req.status}: ${req.rowsDone} rows in ${req.chunksDone} chunks${req.error ? `: ${req.error}` : ''}`);
      run.job = (await deps.jobs.get(job.id)) ?? run.job;
      run.publishJob('progress', `incremental snapshot ${req.status}`);
    },
    onAppended: (tx, added) => {
      if (added > 0) {
        // Counted like a captured transaction (ReplChanBufferSize) by the append itself: the capture task's feed
        // carries its job's in-flight counter (capture.processor.ts); the apply releases it.
        deps.publish(`feed-appended:${job.feed_name}`, { feed: job.feed_name, last: tx.events.at(-1)?.sequence });
      }
    },
  });
  await snapshotter.init();
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const loop = (async () => {
    // A failed read (source gone for a moment) is retried from the last saved chunk.
    while (!inner.signal.aborted) {
      try {
        await snapshotter.run(inner.signal);
      } catch (err) {
        if (inner.signal.aborted) break;
        run.logger.warn({ err: (err as Error).message }, 'incremental snapshot interrupted; retrying from its last chunk');
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  })();
  return {
    snapshotter,
    async stop() {
      inner.abort();
      signal.removeEventListener('abort', onAbort);
      await loop.catch(() => undefined);
      await reader.close().catch(() => undefined);
      await applier?.close().catch(() => undefined);
    },
  };
}
