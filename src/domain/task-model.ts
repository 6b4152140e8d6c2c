/**
 * Tasks: the units a worker runs (a job's capture, apply, snapshot chunks,
 * pipeline components, a sink run). Imports nothing of the project.
 *
 *   waiting --claimed--> queued --picked up--> running --> complete | failed | canceled
 *   running --failed, attempts left--> retrying --> running
 *   running (capture, apply) --job paused / stopped--> paused / stopped
 *
 * Invariant: a stop cancels at once the tasks no worker holds (UNSTARTED);
 * a running task is canceled by its own worker once it really stopped.
 */

export enum TaskKind {
  Noop = 'noop',
  Capture = 'capture',
  Apply = 'apply',
  Snapshot = 'snapshot',
  SnapshotChunk = 'snapshot-chunk',
  Component = 'component',
  DataLoad = 'data-load',
  DataExport = 'data-export',
  CachedQuery = 'cached-query',
  Sink = 'sink',
}

export enum TaskState {
  Waiting = 'waiting',
  Queued = 'queued',
  Running = 'running',
  Complete = 'complete',
  Failed = 'failed',
  Canceled = 'canceled',
  /** Failed with attempts left: BullMQ runs it again after its backoff. */
  Retrying = 'retrying',
  /** A job's capture or apply task whose job was paused (it runs again on resume). */
  Paused = 'paused',
  /** A job's capture or apply task whose job was stopped or moved to another run. */
  Stopped = 'stopped',
}

/**
 * Task states a worker may still change. A stop cancels the ones no worker
 * holds right now (`Waiting`, `Queued`, `Retrying`) at once; a `Running`
 * task is canceled by its worker once it has really stopped.
 */
export const UNSTARTED_TASK_STATES: readonly string[] = [TaskState.Waiting, TaskState.Queued, TaskState.Retrying];
export const OPEN_TASK_STATES: readonly string[] = [...UNSTARTED_TASK_STATES, TaskState.Running];

/** What a task reports through task events. */
export interface TaskEvent {
  taskId: string;
  jobId?: string;
  kind: string;
  state: 'queued' | 'active' | 'progress' | 'completed' | 'failed';
  progress?: number;
  message?: string;
  result?: unknown;
  nodeId?: string;
  at: string;
}
