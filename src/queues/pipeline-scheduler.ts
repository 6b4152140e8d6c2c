/**
 * Runs a pipeline DAG on BullMQ, one task per component, in dependency
 * order. BullMQ flows are trees (a child has one parent) and a DAG component
 * may feed several others, so instead of a flow each component task, once
 * its completion is committed, enqueues every downstream component whose
 * upstream components are all complete. Two parents finishing together may
 * both enqueue a child: the BullMQ job id (`<task id>-r<run>`) makes the
 * second add a no-op. Roots are enqueued at submit.
 */
import type { JobRepo, JobRow, TaskRow } from '../store/job.repo.ts';
import type { QueueSet } from './queue-set.ts';
import { QueueName } from './queue-names.ts';
import type { JobTaskPayload } from './task-payloads.ts';
import { TaskOptions, enqueueJobTask } from './task-enqueue.ts';
import { PipelineModule, pipelineOf } from '../domain/pipeline-model.ts';
import { TaskKind, TaskState } from '../domain/task-model.ts';

/** Claim a waiting task (waiting -> queued, so only one of two racing parents enqueues it) and add it to the queue. */
export async function enqueueTask(queues: QueueSet, jobs: JobRepo, job: JobRow, task: TaskRow, kind: JobTaskPayload['kind']): Promise<boolean> {
  if (!(await jobs.claimTask(task.id, TaskState.Waiting, TaskState.Queued))) return false;
  const payload: JobTaskPayload = { kind, taskId: task.id, jobId: job.id, runId: job.run_id, detail: { component: task.name } };
  const opts = (task.detail as { module?: string }).module === PipelineModule.Capture ? TaskOptions.stream : TaskOptions.component;
  await enqueueJobTask(queues, QueueName.Tasks, payload, opts);
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
