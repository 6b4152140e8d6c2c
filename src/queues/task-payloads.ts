import type { TaskKind } from './queue-names.ts';

export interface NoopPayload {
  kind: TaskKind.Noop;
  taskId: string;
  /** Steps of progress to report. */
  steps: number;
  /** Pause between steps. */
  stepMs: number;
  /** Steps done so far: a task handed back by a closing worker goes on from here. */
  doneSteps?: number;
  message?: string;
}

/** A replication task of a job: the worker loads the job and task from the store by id. */
export interface JobTaskPayload {
  kind: TaskKind.Capture | TaskKind.Apply | TaskKind.Snapshot | TaskKind.SnapshotChunk | TaskKind.Component | TaskKind.DataLoad | TaskKind.DataExport | TaskKind.CachedQuery;
  taskId: string;
  jobId: string;
  /** Generation of the job's run; a task from an older run (before a stop/resume) exits at once. */
  runId: number;
  /** Chunk or component detail. */
  detail?: Record<string, unknown>;
}

/** A sink's delivery task; the worker loads the sink by id and exits when it moved to another run. */
export interface SinkTaskPayload {
  kind: TaskKind.Sink;
  /** `sink-<id>-<run>` */
  taskId: string;
  sinkId: string;
  runId: number;
}

export type TaskPayload = NoopPayload | JobTaskPayload | SinkTaskPayload;

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
