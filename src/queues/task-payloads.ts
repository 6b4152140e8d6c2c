import type { TaskKind } from '../domain/task-model.ts';
import type { ColumnType } from '../replication/change-event.ts';

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

/** Upload and download parameters, as the data processors read them. */
export interface DataTaskParams {
  namespace: string;
  tableName: string;
  connectionId: string;
  schema: string;
  table: string;
  delimiter: string;
  file?: string;
  head?: boolean;
  partitions?: number;
  drop?: boolean;
  staged?: boolean;
  columns?: ColumnType[];
  key?: string[];
  rows?: number;
  outputPath?: string;
}
