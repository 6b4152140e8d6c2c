/**
 * Runs BullMQ workers for one or more queues and dispatches each job to the
 * processor registered for its task kind. A task's BullMQ job id is its task
 * id. If this process dies, BullMQ's stalled-job check hands the task to
 * another worker after `lockDurationMs`; processors resume from their
 * checkpoints, so that is always safe.
 */
import { UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import type { TaskPayload } from './task-payloads.ts';
import type { TaskEvent } from '../domain/task-model.ts';

export interface TaskContext {
  job: Job<TaskPayload>;
  signal: AbortSignal;
  nodeId: string;
  logger: Logger;
  emit(event: Omit<TaskEvent, 'at' | 'nodeId' | 'taskId' | 'kind'> & Partial<Pick<TaskEvent, 'taskId' | 'kind'>>): void;
}

export type TaskProcessor = (payload: TaskPayload, ctx: TaskContext) => Promise<unknown>;

/** The abort reason of tasks stopped because their worker is closing (SIGTERM); see `handedBack`. */
export const WORKER_SHUTDOWN = 'worker-shutdown';

/** True when the task's signal was aborted because the worker is closing, not by a pause, stop or cancel. */
export function stoppedForShutdown(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason === WORKER_SHUTDOWN;
}

export interface WorkerHostOptions {
  queues: string[];
  prefix: string;
  concurrency: number;
  nodeId: string;
  logger: Logger;
  newConnection: () => Redis;
  publishTaskEvent: (event: TaskEvent) => void;
  /** Lock lifetime; a dead worker's task moves on after about this long. Default 10000 ms. */
  lockDurationMs?: number;
  /**
   * How long close() waits for aborted tasks to hand themselves back before
   * it stops the workers anyway (their tasks then move on once their lock
   * expires, as after a crash). Default 30000 ms.
   */
  shutdownGraceMs?: number;
}

/** `p`, or `undefined` once `ms` passed. */
function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<typeof TIMED_OUT>((resolve) => { timer = setTimeout(() => resolve(TIMED_OUT), ms); timer.unref?.(); });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
const TIMED_OUT = Symbol('timed out');

export class WorkerHost {
  private readonly processors = new Map<string, TaskProcessor>();
  private readonly workers: Worker[] = [];
  /** Every task running here, by its abort controller: a stalled task BullMQ re-delivered can run twice under one id, and both must be reachable. */
  private readonly running = new Map<AbortController, { taskId: string; jobId?: string }>();
  private closing?: Promise<void>;

  constructor(private readonly opts: WorkerHostOptions) {}

  register(kind: string, processor: TaskProcessor): this {
    this.processors.set(kind, processor);
    return this;
  }

  start(): void {
    const lockDuration = this.opts.lockDurationMs ?? 10_000;
    for (const name of this.opts.queues) {
      const worker = new Worker<TaskPayload>(name, (job, token) => this.process(job, token), {
        connection: this.opts.newConnection() as unknown as ConnectionOptions,
        prefix: this.opts.prefix,
        concurrency: this.opts.concurrency,
        lockDuration,
        stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
        maxStalledCount: 1_000_000,
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
      });
      worker.on('error', (err) => this.opts.logger.warn({ err, queue: name }, 'worker error'));
      this.workers.push(worker);
    }
  }

  /** Abort a running task on this node (pause/stop); the processor returns at its next check. */
  abort(taskId: string): boolean {
    let found = false;
    for (const [c, t] of this.running) if (t.taskId === taskId) { c.abort(); found = true; }
    return found;
  }

  /** Abort every task of a job running on this node (pause, stop, delete). */
  abortJob(jobId: string): number {
    let n = 0;
    for (const [c, t] of this.running) {
      if (t.jobId === jobId) { c.abort(); n++; }
    }
    return n;
  }

  runningTasks(): string[] { return [...new Set([...this.running.values()].map((t) => t.taskId))]; }

  private async process(job: Job<TaskPayload>, token?: string): Promise<unknown> {
    const payload = job.data;
    const processor = this.processors.get(payload.kind);
    const base = { taskId: payload.taskId, kind: payload.kind, nodeId: this.opts.nodeId };
    const emit: TaskContext['emit'] = (e) => this.opts.publishTaskEvent({ ...base, ...e, at: new Date().toISOString() });
    if (!processor) throw new Error(`no processor for task kind ${payload.kind}`);
    const controller = new AbortController();
    this.running.set(controller, { taskId: payload.taskId, jobId: 'jobId' in payload ? payload.jobId : undefined });
    // Fetched just before close() began but started after it aborted the running ones: stopped at once, or a
    // task that runs until aborted (capture, apply) would hold the shutdown for its whole grace period.
    if (this.closing) controller.abort(WORKER_SHUTDOWN);
    const logger = this.opts.logger.child({ task: payload.taskId, kind: payload.kind });
    emit({ state: 'active' });
    try {
      let result: unknown;
      try {
        result = await processor(payload, { job, signal: controller.signal, nodeId: this.opts.nodeId, logger, emit });
      } catch (err) {
        if (stoppedForShutdown(controller.signal) && !(err instanceof UnrecoverableError)) return await this.handBack(job, token, logger);
        throw err;
      }
      // Whatever a processor returns once its worker began closing, it stopped early or raced the stop: it goes back
      // to the queue rather than being recorded as done. Processors resume from checkpoints, so a finished one ends at once.
      if (stoppedForShutdown(controller.signal)) return await this.handBack(job, token, logger);
      emit({ state: 'completed', result, progress: 100 });
      return result;
    } catch (err) {
      if (!(err instanceof WaitingError)) emit({ state: 'failed', message: (err as Error).message });
      throw err;
    } finally {
      this.running.delete(controller);
    }
  }

  /** Back to waiting without spending an attempt; another worker (or this one after a restart) takes it. */
  private async handBack(job: Job<TaskPayload>, token: string | undefined, logger: Logger): Promise<never> {
    await job.moveToWait(token);
    logger.info({ bullJob: job.id }, 'worker closing: task handed back to the queue');
    throw new WaitingError();
  }

  /**
   * Stop taking tasks, abort running ones (they save their checkpoints and go
   * back to the queue), wait for them, at most shutdownGraceMs: a task that
   * does not return by then is left to BullMQ's stalled-job check, as if this
   * process had died, and is named in the log. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.running.keys()) c.abort(WORKER_SHUTDOWN);
      const grace = this.opts.shutdownGraceMs ?? 30_000;
      const closed = await within(Promise.all(this.workers.map((w) => w.close().catch(() => undefined))), grace);
      if (closed !== TIMED_OUT) return;
      const left = [...this.running.values()].map((t) => t.taskId);
      this.opts.logger.warn({ tasks: left, graceMs: grace }, 'worker shutdown: tasks did not return in time; closing anyway (their locks expire and another worker takes them)');
      await within(Promise.all(this.workers.map((w) => w.close(true).catch(() => undefined))), 5000);
      await within(Promise.all(this.workers.map((w) => w.disconnect().catch(() => undefined))), 5000);
    })();
    return this.closing;
  }
}
