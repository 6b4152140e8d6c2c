/**
 * The job domain: types and states (legacy APIs' words for them: src/rest-compat/<dialect>/).
 *
 *   pending --start--> running --(migration caught up)--> complete
 *   running --pause--> paused --resume--> running
 *   pending|running|paused --stop--> canceled
 *   running --fatal error--> failed --resume--> running
 *
 * Invariants: a job's tasks run only while it is `running`, and only tasks
 * of its current `run_id` (each start/resume increments it) may write
 * progress; a task of an older run exits at its next check.
 */
import type { RenameMap, TableFilter } from './table-filter.ts';

export enum JobType {
  Synchronous = 'synchronous',
  Migration = 'migration',
  Subscribe = 'subscribe',
  Pipeline = 'pipeline',
}

export enum JobStatus {
  Pending = 'pending',
  Running = 'running',
  Paused = 'paused',
  Complete = 'complete',
  Failed = 'failed',
  Canceled = 'canceled',
}

/**
 * What a running job does when the source no longer has what its capture
 * must continue from (MariaDB binlog purged, PostgreSQL slot dropped).
 * `fail`: the job goes FAILED naming what is gone (resume from scratch by
 * hand). `resnapshot`: it starts over by itself from the source's current
 * position: the feed gets a gap marker (readers from before it get
 * SNAPSHOT_TOO_OLD) and, for jobs with a destination, the destination's
 * tables are emptied and copied again (docs/consistency.md, "Log loss").
 */
export enum LogLossAction {
  Fail = 'fail',
  Resnapshot = 'resnapshot',
}

export interface JobSpec {
  tables: TableFilter;
  rename?: RenameMap;
  /** Apply lanes split by primary-key hash. */
  parallelWorkers: number;
  /** Transactions in flight between capture and apply before capture waits. */
  replChanBufferSize: number;
  /** Rate limits for capture: changes/s and bytes/s (0 = none). */
  msgsLimit: number;
  msgBytesLimit: number;
  bytesLimit: number;
  /** Start position (Udup `Gtid`): a GTID set, "file:pos", or a PostgreSQL LSN. Empty = current. */
  startPosition?: string;
  selectorColumn: string;
  /** Copy existing rows first. */
  snapshot: boolean;
  chunkRows: number;
  /** Udup NodeId hints per task type. Unknown node ids are kept as hints; the task runs in the shared pool. */
  nodeHints?: Record<string, string>;
  /** When the source lost the capture's position. Absent = fail (jobs created before the option). */
  onLogLoss?: LogLossAction;
  /** Feed retention overrides. */
  feedMaxChanges?: number;
  feedMaxAgeSeconds?: number;
  /**
   * PostgreSQL sources: an idle capture confirms the server's position this
   * often, so the slot does not hold WAL while its tables see no writes.
   * 0 = off; absent = 10 (jobs created before the option).
   */
  heartbeatIntervalSeconds?: number;
}

/** heartbeatIntervalSeconds when a job does not say. */
export const DEFAULT_HEARTBEAT_SECONDS = 10;

export const DEFAULT_SPEC: Omit<JobSpec, 'tables'> = {
  parallelWorkers: 1,
  replChanBufferSize: 1000,
  msgsLimit: 0,
  msgBytesLimit: 0,
  bytesLimit: 0,
  selectorColumn: '_change_selector',
  snapshot: true,
  chunkRows: 20_000,
};

/** Mutable run state of a job (jobs.state). */
export interface JobRunState {
  /** Position the stream started from (fixed at first prepare). */
  startPosition?: unknown;
  /** PostgreSQL exported snapshot name, while importable. */
  snapshotName?: string;
  snapshotPlanned?: boolean;
  snapshotDone?: boolean;
  /** Source position when the snapshot finished (migration catch-up target). */
  snapshotEndPosition?: unknown;
  captureDone?: boolean;
  applyDone?: boolean;
  /**
   * Set when the run was started over after a log loss (onLogLoss: resnapshot):
   * the snapshot is taken again whatever `spec.snapshot` says, the
   * destination's tables are emptied first and its lane checkpoints moved to
   * `gap`, the feed sequence that marks the loss.
   */
  resnapshot?: { reason: string; gap: string; at: string; count: number };
}

/** Whether this run of the job copies the tables (a re-snapshot after log loss always does). */
export function wantsSnapshot(spec: JobSpec, state: JobRunState): boolean {
  return spec.snapshot || state.resnapshot !== undefined;
}

export interface JobProgressData {
  phase: 'pending' | 'snapshot' | 'streaming' | 'catching-up' | 'complete' | 'incremental-snapshot';
  rowsDone: number;
  rowsEstimated: number;
  chunksDone: number;
  chunksTotal: number;
  startedAt?: string;
  /** The last incremental snapshot (snapshotTables, addTables), while streaming. */
  incrementalSnapshot?: IncrementalSnapshotProgress;
}

export interface IncrementalSnapshotProgress {
  id: string;
  /** pending, running, done, failed */
  status: string;
  reason: string;
  tables: string[];
  where?: string;
  rowsDone: number;
  rowsEstimated: number;
  chunksDone: number;
  chunksTotal: number;
  error?: string;
  startedAt: string;
  finishedAt?: string;
}

export interface JobMetricsData {
  changesCaptured: number;
  rowsApplied: number;
  bytesCaptured: number;
  lagMs: number | null;
  capturedSequence?: string;
  appliedSequence?: string;
  capturedPosition?: unknown;
  /** Source commit time of the last captured transaction (ISO). */
  lastCommitAt?: string;
}
