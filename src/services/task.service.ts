/**
 * Dispatching trivial tasks and reading task state from BullMQ. Replication
 * tasks are dispatched by the job service; this covers the noop task and the
 * task-event stream that every task kind shares.
 */
import { randomUUID } from 'node:crypto';
import type { QueueSet } from '../queues/queue-set.ts';
import { QueueName } from '../queues/queue-names.ts';
import { TaskOptions } from '../queues/task-enqueue.ts';
import type { NoopPayload } from '../queues/task-payloads.ts';
import { Topic, topicFor, type AppPubSub } from '../events/pubsub.ts';
import { badInput } from '../errors.ts';
import { currentThenLive } from '../events/live.ts';
import { TaskKind, type TaskEvent } from '../domain/task-model.ts';

export class TaskService {
  constructor(private readonly queues: QueueSet, private readonly pubSub: AppPubSub) {}

  async runNoop(steps: number, stepMs: number, message?: string): Promise<{ taskId: string }> {
    if (!Number.isInteger(steps) || steps < 0 || steps > 100) throw badInput('steps must be an integer between 0 and 100', 'steps');
    if (!Number.isInteger(stepMs) || stepMs < 0 || stepMs > 10_000) throw badInput('stepMs must be between 0 and 10000', 'stepMs');
    const taskId = randomUUID();
    const payload: NoopPayload = { kind: TaskKind.Noop, taskId, steps, stepMs, message };
    await this.queues.get(QueueName.Tasks).add(TaskKind.Noop, payload, { ...TaskOptions.noop, jobId: taskId });
    return { taskId };
  }

  /** Current state of a task from BullMQ, as a TaskEvent; undefined if unknown. */
  async current(taskId: string, queue: string = QueueName.Tasks): Promise<TaskEvent | undefined> {
    const job = await this.queues.get(queue).getJob(taskId);
    if (!job) return undefined;
    const state = await job.getState();
    const mapped: TaskEvent['state'] = state === 'completed' ? 'completed' : state === 'failed' ? 'failed' : state === 'active' ? 'active' : 'queued';
    return {
      taskId, kind: (job.data as { kind: string }).kind, state: mapped,
      progress: typeof job.progress === 'number' ? job.progress : undefined,
      result: job.returnvalue ?? undefined, message: job.failedReason || undefined,
      at: new Date(job.finishedOn ?? job.processedOn ?? job.timestamp).toISOString(),
    };
  }

  /** Current state, then live events, ending after a terminal one. Subscribes before reading state, so nothing falls between. */
  async *events(taskId: string): AsyncGenerator<TaskEvent> {
    const live = this.pubSub.subscribe(topicFor(Topic.TaskEvents, taskId)) as AsyncIterable<TaskEvent>;
    yield* currentThenLive(live, () => this.current(taskId), (e) => e.state === 'completed' || e.state === 'failed');
  }
}
