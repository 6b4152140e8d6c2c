/**
 * Runs a pipeline DAG on BullMQ, one task per component, in dependency
 * order. BullMQ flows are trees (a child has one parent) and a DAG component
 * may feed several others, so instead of a flow each component task, once
 * its completion is committed, enqueues every downstream component whose
 * upstream components are all complete. Two parents finishing together may
 * both enqueue a child: the BullMQ job id (`<task id>-r<run>`) makes the
 * second add a no-op. Roots are enqueued at submit.
 */
import type { JobsOptions } from 'bullmq';
import type { JobRepo, JobRow, TaskRow } from '../store/job.repo.ts';
import type { QueueSet } from './queue-set.ts';
import { QueueName } from './queue-names.ts';
import type { JobTaskPayload } from './task-payloads.ts';
import { PipelineModule, pipelineOf } from '../domain/pipeline-model.ts';
import { TaskKind, TaskState } from '../domain/task-model.ts';

/** Component tasks retry I/O failures a few times; a data error fails at once (UnrecoverableError). */
export const COMPONENT_TASK_OPTS: JobsOptions = { attempts: 3, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } };
/** A Capture streams until stopped: like a capture task, it outlives worker restarts and source outages (fatal errors still fail at once). */
export const STREAM_TASK_OPTS: JobsOptions = { ...COMPONENT_TASK_OPTS, attempts: 100_000, backoff: { type: 'fixed', delay: 2000 } };

/** Claim a waiting task (waiting -> queued, so only one of two racing parents enqueues it) and add it to the queue. */
export async function enqueueTask(queues: QueueSet, jobs: JobRepo, job: JobRow, task: TaskRow, kind: JobTaskPayload['kind']): Promise<boolean> {
  const claimed = await jobs.pool.query(`UPDATE tasks SET status = $2, updated_at = now() WHERE id = $1 AND status = $3`, [task.id, TaskState.Queued, TaskState.Waiting]);
  if (!claimed.rowCount) return false;
  const payload: JobTaskPayload = { kind, taskId: task.id, jobId: job.id, runId: job.run_id, detail: { component: task.name } };
  const opts = (task.detail as { module?: string }).module === PipelineModule.Capture ? STREAM_TASK_OPTS : COMPONENT_TASK_OPTS;
  await queues.get(QueueName.Tasks).add(kind, payload, { ...opts, jobId: `${task.id}-r${job.run_id}` });
  return true;
}

/** Enqueue every waiting component whose upstream components are all complete. Returns their names. */
export async function enqueueReady(queues: QueueSet, jobs: JobRepo, job: JobRow, kind: JobTaskPayload['kind'] = TaskKind.Component): Promise<string[]> {
  const spec = pipelineOf(job);
  const tasks = await jobs.tasksOf([job.id]);
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const done = new Set(tasks.filter((t) => t.status === TaskState.Complete).map((t) => t.name));
  const started: string[] = [];
  for (const c of spec.components) {
    const t = byName.get(c.name);
    if (!t || t.status !== TaskState.Waiting) continue;
    if (!c.upstream.every((u) => done.has(u))) continue;
    if (await enqueueTask(queues, jobs, job, t, kind)) started.push(c.name);
  }
  return started;
}
