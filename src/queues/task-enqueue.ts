/**
 * The one home of task scheduling on BullMQ: the options each kind of task
 * is queued with, the BullMQ job id of a task run, and the enqueueing of a
 * job's long-running tasks (JobService.start and the log-loss restart).
 *
 * Invariant: a task of a job is queued as `<task id>-r<run id>`, so adding
 * the same run of a task twice is a no-op (racing parents of a pipeline
 * component, a retried start) while every new run is a new BullMQ job.
 */
import type { JobsOptions } from 'bullmq';
import type { JobRepo, JobRow } from '../store/job.repo.ts';
import { JobType } from '../domain/job-model.ts';
import { TaskKind, TaskState } from '../domain/task-model.ts';
import type { QueueSet } from './queue-set.ts';
import type { JobTaskPayload } from './task-payloads.ts';

const KEEP = { removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } } as const;
const RETRY_EVERY_2S = { type: 'fixed', delay: 2000 } as const;

/** BullMQ options of each kind of task. */
export const TaskOptions = {
  /**
   * Long-running replication tasks (capture, apply, snapshot chunks and their
   * parent, cached-query upkeep): they outlive worker restarts and source
   * outages, retrying I/O errors from their checkpoint every 2 s; fatal
   * errors fail at once (UnrecoverableError).
   */
  replication: { attempts: 100_000, backoff: RETRY_EVERY_2S, ...KEEP },
  /** A sink's delivery task: like replication tasks, with more attempts (a target may be down for days). */
  sink: { attempts: 1_000_000, backoff: RETRY_EVERY_2S, ...KEEP },
  /** Pipeline component tasks retry I/O failures a few times; a data error fails at once. */
  component: { attempts: 3, backoff: { type: 'fixed', delay: 1000 }, ...KEEP },
  /** A pipeline's Capture streams until stopped: retried like a capture task. */
  stream: { attempts: 100_000, backoff: RETRY_EVERY_2S, ...KEEP },
  /** The noop task (tests, demos): no retry. */
  noop: { removeOnComplete: { age: 3600 }, removeOnFail: { age: 3600 } },
} as const satisfies Record<string, JobsOptions>;

/** The BullMQ job id of one run of a task. */
export function taskJobId(taskId: string, runId: number): string {
  return `${taskId}-r${runId}`;
}

/** Queue one run of a job's task under its run id. */
export async function enqueueJobTask(queues: QueueSet, queue: string, payload: JobTaskPayload, opts: JobsOptions = TaskOptions.replication): Promise<void> {
  await queues.get(queue).add(payload.kind, payload, { ...opts, jobId: taskJobId(payload.taskId, payload.runId) });
}

/** Where one of a job's long-running tasks goes (`Src` capture, `Dest` apply). */
export interface TaskPlace { queue: string; placement: string; nodeHint?: string | null }

/** The long-running tasks of a job: a capture (`Src`), and an apply (`Dest`) unless the job only subscribes. */
export function jobTaskKinds(job: Pick<JobRow, 'type'>): { kind: TaskKind.Capture | TaskKind.Apply; name: 'Src' | 'Dest' }[] {
  const src = { kind: TaskKind.Capture, name: 'Src' } as const;
  return job.type === JobType.Subscribe ? [src] : [src, { kind: TaskKind.Apply, name: 'Dest' }];
}

/** Store and queue the long-running tasks of a job's current run, each where `place` says. */
export async function enqueueJobTasks(queues: QueueSet, jobs: JobRepo, job: JobRow, place: (name: 'Src' | 'Dest') => Promise<TaskPlace>): Promise<void> {
  for (const { kind, name } of jobTaskKinds(job)) {
    const { queue, placement, nodeHint } = await place(name);
    const task = await jobs.upsertTask({ jobId: job.id, kind, name, status: TaskState.Queued, nodeHint, queue, placement });
    await enqueueJobTask(queues, queue, { kind, taskId: task.id, jobId: job.id, runId: job.run_id });
  }
}
