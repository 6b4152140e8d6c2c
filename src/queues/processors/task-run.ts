/**
 * What every replication task shares: loading its job, a guard that aborts
 * the task when the job leaves `running` or moves to a newer run, failing the
 * job on fatal errors, and re-queueing on worker shutdown.
 */
import { UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobRepo, JobRow } from '../../store/job.repo.ts';
import type { ConnectionRepo } from '../../store/connection.repo.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { JobStatus } from '../../domain/job-model.ts';
import { jobStatusEvent } from '../../domain/job-views.ts';
import { Topic, topicFor } from '../../events/pubsub.ts';
import { classify, isTransient } from '../../replication/errors.ts';
import { maskSecrets, type Logger } from '../../observability/logger.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import type { TaskContext } from '../worker-host.ts';
import type { QueueSet } from '../queue-set.ts';
import { TaskState } from '../../domain/task-model.ts';
import { taskFailuresKey } from '../../replication/feed/feed-keys.ts';

/** How often a task waiting for its job's snapshot looks at the job's state. */
export const SNAPSHOT_POLL_MS = 100;

export interface ReplicationDeps {
  jobs: JobRepo;
  connections: ConnectionRepo;
  redis: Redis;
  queues: QueueSet;
  feedPrefix: string;
  publish: (topic: string, payload: unknown) => void;
  logger: Logger;
  metrics?: Metrics;
  /** Feed retention defaults (FEED_MAX_CHANGES, FEED_MAX_AGE_SECONDS); a job's spec may override them. */
  retention: { maxChanges: number; maxAgeMs: number };
  /** TASK_MAX_REPEATED_FAILURES: same error, same position, this many attempts in a row -> the job fails. Default 10. */
  maxRepeatedFailures?: number;
  /** LAG_WARN_SECONDS in ms: apply lag above this is logged (job log and server log). Default 30 s. */
  lagWarnMs?: number;
}

const DEFAULT_MAX_REPEATED_FAILURES = 10;
/** How long a task's failure streak is remembered in Redis. */
const FAILURE_STREAK_TTL_S = 7 * 24 * 3600;

/** Thrown when a task stops because its worker is shutting down: BullMQ retries it (elsewhere). */
export class WorkerShutdownError extends Error {
  override readonly name = 'WorkerShutdownError';
  constructor() { super('worker shutting down; the task resumes from its checkpoint on another worker'); }
}

export class TaskRun {
  readonly controller = new AbortController();
  private timer?: NodeJS.Timeout;
  /** Why the run stopped: the job moved on (pause/stop/new run) or the worker is closing. */
  stoppedBecause?: 'job-changed' | 'shutdown';

  private constructor(readonly payload: JobTaskPayload, readonly ctx: TaskContext, readonly deps: ReplicationDeps, public job: JobRow) {}

  /** Loads the job; undefined when the task belongs to an older run or the job is not running (it then exits quietly). */
  static async begin(payload: JobTaskPayload, ctx: TaskContext, deps: ReplicationDeps): Promise<TaskRun | undefined> {
    const job = await deps.jobs.get(payload.jobId);
    if (!job || job.run_id !== payload.runId || job.status !== JobStatus.Running) return undefined;
    const run = new TaskRun(payload, ctx, deps, job);
    ctx.signal.addEventListener('abort', () => { run.stoppedBecause ??= 'shutdown'; run.controller.abort(); }, { once: true });
    if (ctx.signal.aborted) { run.stoppedBecause ??= 'shutdown'; run.controller.abort(); } // aborted while the job was loading
    run.timer = setInterval(() => { run.check().catch(() => undefined); }, 2000);
    await deps.jobs.updateTask(payload.taskId, { status: TaskState.Running, nodeId: ctx.nodeId, attempt: true, error: null });
    return run;
  }

  get signal(): AbortSignal { return this.controller.signal; }
  get logger(): Logger { return this.ctx.logger; }

  /** Re-read the job; abort if it is no longer this run's. */
  async check(): Promise<JobRow | undefined> {
    const job = await this.deps.jobs.get(this.payload.jobId);
    if (!job || job.run_id !== this.payload.runId || job.status !== JobStatus.Running) {
      this.stoppedBecause ??= 'job-changed';
      this.controller.abort();
      return undefined;
    }
    this.job = job;
    return job;
  }

  /** Called when the job's control message says abort. */
  abortForJobChange(): void {
    this.stoppedBecause ??= 'job-changed';
    this.controller.abort();
  }

  publishJob(kind = 'progress', message?: string): void {
    this.deps.publish(topicFor(Topic.JobEvents, this.job.id), jobStatusEvent(this.job, kind, message));
  }

  async log(level: 'info' | 'warn' | 'error', message: string): Promise<void> {
    await this.deps.jobs.log(this.job.id, level, maskSecrets(message));
  }

  /** A job that goes FAILED is also said in the process log: the job log alone reached nobody watching the server. */
  logJobFailed(reason: string): void {
    this.logger.error({ jobId: this.job.id, job: this.job.name, reason: maskSecrets(reason) }, `job ${this.job.name} (${this.job.id}) failed: ${maskSecrets(reason)}`);
  }

  /** Turn an error into the task's outcome: fatal -> job failed (no retry); retriable -> BullMQ retries with backoff. */
  async fail(err: unknown): Promise<never> {
    const e = classify(err);
    const message = maskSecrets(e.message);
    // The job moved to a newer run since (paused and resumed, started over after a log loss) and this task did not
    // notice yet: the task row belongs to the new run's task now, and the job's state is not this task's to change.
    const now = await this.deps.jobs.get(this.payload.jobId).catch(() => undefined);
    if (now && now.run_id !== this.payload.runId) {
      this.logger.info({ err: message, runId: this.payload.runId, jobRunId: now.run_id }, 'task of an earlier run stops');
      throw new UnrecoverableError(`task of run ${this.payload.runId} stopped (the job is in run ${now.run_id}): ${message}`);
    }
    const streak = e.retriable ? await this.failureStreak(err, message) : undefined;
    const limit = this.deps.maxRepeatedFailures ?? DEFAULT_MAX_REPEATED_FAILURES;
    const givingUp = !e.retriable || (streak !== undefined && streak.count >= limit);
    this.deps.metrics?.taskFailures.inc({ job: this.job.name, kind: this.payload.kind, outcome: givingUp ? 'failed' : 'retrying' });
    if (givingUp) {
      const why = e.retriable
        ? `${this.payload.kind} task ${streak!.task} failed ${streak!.count} times in a row with the same error${streak!.position ? ` at position ${streak!.position}` : ''}: ${message}`
        : message;
      await this.deps.jobs.updateTask(this.payload.taskId, { status: TaskState.Failed, error: why });
      const failed = await this.deps.jobs.transition(this.job.id, [JobStatus.Running], JobStatus.Failed, { error: why, reason: `${this.payload.kind} failed`, finished: true });
      await this.log('error', `${this.payload.kind} failed: ${why}`);
      if (failed) { this.job = failed; this.publishJob('status', why); this.logJobFailed(`${this.payload.kind} failed: ${why}`); }
      throw new UnrecoverableError(why);
    }
    await this.deps.jobs.updateTask(this.payload.taskId, { status: TaskState.Retrying, error: message });
    await this.log('warn', `${this.payload.kind} interrupted, retrying${streak ? ` (${streak.count} of ${limit} with this error)` : ''}: ${message}`);
    throw new Error(message);
  }

  /**
   * Counts the attempts of this task that failed in a row with the same
   * error at the same task position (a position that moved means the task
   * made progress, and the count starts again). Transient errors (the peer
   * unreachable, a deadlock) are retried for as long as they last and not
   * counted; neither is anything while Redis itself is unreachable.
   */
  private async failureStreak(err: unknown, message: string): Promise<{ count: number; task: string; position: string | null } | undefined> {
    if (isTransient(err)) return undefined;
    try {
      const task = (await this.deps.jobs.tasksOf([this.job.id])).find((t) => t.id === this.payload.taskId);
      const position = task?.position ? JSON.stringify(task.position) : null;
      const signature = `${message}\u0000${position ?? ''}`;
      const key = taskFailuresKey(this.deps.feedPrefix, this.payload.taskId, this.payload.runId);
      let count = 1;
      if ((await this.deps.redis.hget(key, 'sig')) === signature) count = await this.deps.redis.hincrby(key, 'count', 1);
      else await this.deps.redis.hset(key, 'sig', signature, 'count', 1);
      await this.deps.redis.expire(key, FAILURE_STREAK_TTL_S);
      return { count, task: task?.name ?? this.payload.taskId, position };
    } catch (streakErr) {
      this.logger.warn({ err: String(streakErr) }, 'could not count the failure streak');
      return undefined;
    }
  }

  /** After the work loop ended by abort: exit quietly if the job moved on, else ask BullMQ to retry (worker shutdown). */
  async endAborted(): Promise<{ stopped: string }> {
    this.finish();
    const job = await this.deps.jobs.get(this.payload.jobId);
    if (this.stoppedBecause === 'shutdown' && job && job.run_id === this.payload.runId && job.status === JobStatus.Running) {
      await this.deps.jobs.updateTask(this.payload.taskId, { status: TaskState.Queued });
      throw new WorkerShutdownError();
    }
    await this.deps.jobs.updateTask(this.payload.taskId, { status: job?.status === JobStatus.Paused ? TaskState.Paused : TaskState.Stopped });
    return { stopped: job?.status ?? 'deleted' };
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
