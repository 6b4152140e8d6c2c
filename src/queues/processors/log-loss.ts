/**
 * A job whose source lost the capture's position (MariaDB binlog purged,
 * PostgreSQL slot dropped) and that was created with `onLogLoss: RESNAPSHOT`
 * starts over by itself instead of failing:
 *
 *   capture finds the position gone (LogLostError)
 *     -> feed.markGap(): old changes dropped, trim mark = gap (readers from before it: SNAPSHOT_TOO_OLD)
 *     -> new run, state = { resnapshot: { reason, gap } } (tasks of the old run exit at their next check)
 *     -> capture + apply of the new run queued where the old ones ran
 *   new run's capture: no resume position -> source's current position (new slot / binlog end)
 *     -> plans the snapshot again; before the chunks, the destination's tables are emptied,
 *        the job's chunk markers forgotten and every lane checkpoint set to the gap (one transaction)
 *     -> chunks copy, apply streams from the gap: the destination converges to the source.
 *
 * Each step is safe to repeat: a capture that crashes before the new run
 * exists runs again in the old run, finds the position gone again (the feed
 * no longer holds one; the job's start position is older still) and redoes it.
 * SUBSCRIBE jobs (no destination) get the gap and the new position only.
 * docs/consistency.md, "Log loss".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangeFeed } from '../../replication/feed/change-feed.ts';
import type { LogLostError } from '../../replication/errors.ts';
import type { Applier } from '../../replication/apply/applier.ts';
import type { TableInfo } from '../../replication/table-info.ts';
import { JobType, type JobRunState } from '../../domain/job-model.ts';
import { QueueName, SHARED_POOL } from '../queue-names.ts';
import { enqueueJobTasks } from '../task-enqueue.ts';
import type { ReplicationDeps, TaskRun } from './task-run.ts';
import { inflightKey } from '../../replication/feed/feed-keys.ts';

/**
 * How long the new run waits before it empties the destination: tasks of the
 * old run (an apply, snapshot chunks when the loss came during a snapshot)
 * re-read their job every 2 s and stop. An old apply is fenced anyway (the
 * lane checkpoints move to the gap in the same transaction); an old chunk's
 * in-flight load is not, hence the wait.
 */
export const OLD_RUN_GRACE_MS = 3000;

/** The capture task's answer to a LogLostError under onLogLoss: RESNAPSHOT. */
export async function restartAfterLogLoss(run: TaskRun, deps: ReplicationDeps, feed: ChangeFeed, err: LogLostError): Promise<{ resnapshot: string }> {
  const job = run.job;
  const subscribe = job.type === JobType.Subscribe;
  const reason = subscribe
    ? `${err.lost}: restarting at the source's current position (onLogLoss: RESNAPSHOT); the feed marks the gap`
    : `${err.lost}: re-snapshotting (onLogLoss: RESNAPSHOT)`;
  const gap = await feed.markGap();
  // Transactions appended but not applied were dropped with the feed's old changes.
  await deps.redis.set(inflightKey(deps.feedPrefix, job.id), 0);
  const state: JobRunState = { resnapshot: { reason, gap, at: new Date().toISOString(), count: (job.state.resnapshot?.count ?? 0) + 1 } };
  // Before the new run exists: whoever sees its reason sees the old phase gone.
  await deps.jobs.mergeProgress(job.id, { phase: 'pending', rowsDone: 0, chunksDone: 0, chunksTotal: 0 });
  const moved = await deps.jobs.restartRun(job.id, run.payload.runId, state, reason);
  if (!moved) {
    run.logger.warn({ reason }, 'log loss: the job moved on before it could start over');
    return { resnapshot: 'job moved on' };
  }
  await run.log('warn', `${reason}; feed gap at ${gap} (readers from before it get SNAPSHOT_TOO_OLD): ${err.message}`);
  const tasks = await deps.jobs.tasksOf([job.id]);
  // The new run's tasks go where the old run's ran.
  await enqueueJobTasks(deps.queues, deps.jobs, moved, async (name) => {
    const old = tasks.find((t) => t.name === name);
    return { queue: old?.queue ?? QueueName.Tasks, placement: old?.placement ?? SHARED_POOL };
  });
  await run.log('info', `started over (run ${moved.run_id}) after log loss`);
  run.job = moved;
  run.publishJob('status', reason);
  return { resnapshot: reason };
}

/**
 * Planning a re-snapshot: wait out the old run, then empty the destination and move its lanes to the gap.
 * False when this run was aborted meanwhile (nothing is planned then).
 */
export async function resetDestination(run: TaskRun, applier: Applier, tables: TableInfo[]): Promise<boolean> {
  const r = run.job.state.resnapshot;
  if (!r) return true;
  await sleep(OLD_RUN_GRACE_MS, undefined, { signal: run.signal }).catch(() => undefined);
  if (run.signal.aborted || !(await run.check())) return false;
  await applier.resetForResnapshot(tables, run.job.spec.parallelWorkers, r.gap);
  await run.log('info', `re-snapshot: ${tables.length} destination tables emptied, lane checkpoints at the feed gap ${r.gap}`);
  return true;
}
