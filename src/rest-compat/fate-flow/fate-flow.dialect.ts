/**
 * FATE-Flow's words (services/legacy-vocabulary.ts): job and task statuses
 * (entity/run_status.py), status filters that accept them, and FATE's job
 * ids. Used by the FATE-Flow routes, and handed by the composition root to
 * the pipeline service (job ids, filters, the deprecated `fateStatus`
 * fields). Imports only the domain.
 */
import { randomInt } from 'node:crypto';
import { JobStatus } from '../../domain/job-model.ts';
import { TaskState } from '../../domain/task-model.ts';

/** FATE-Flow job statuses (entity/run_status.py). */
export enum FateStatus {
  Waiting = 'waiting',
  Running = 'running',
  Success = 'success',
  Failed = 'failed',
  Canceled = 'canceled',
  Timeout = 'timeout',
}

export function fateJobStatus(status: JobStatus, reason: string | null | undefined): FateStatus {
  switch (status) {
    case JobStatus.Pending:
    case JobStatus.Paused: return FateStatus.Waiting;
    case JobStatus.Running: return FateStatus.Running;
    case JobStatus.Complete: return FateStatus.Success;
    case JobStatus.Canceled: return FateStatus.Canceled;
    case JobStatus.Failed: return reason === 'timeout' ? FateStatus.Timeout : FateStatus.Failed;
  }
}

export function fateTaskStatus(state: string): FateStatus {
  switch (state) {
    case TaskState.Running: return FateStatus.Running;
    case TaskState.Complete: return FateStatus.Success;
    case TaskState.Failed: return FateStatus.Failed;
    case TaskState.Canceled:
    case TaskState.Stopped: return FateStatus.Canceled;
    default: return FateStatus.Waiting;
  }
}

/** FATE status name or Tributary status name -> the Tributary statuses it covers. */
export function statusesFor(s: string): JobStatus[] {
  switch (s.toLowerCase()) {
    case 'waiting': case 'ready': return [JobStatus.Pending, JobStatus.Paused];
    case 'success': return [JobStatus.Complete];
    case 'timeout': return [JobStatus.Failed];
    default: return Object.values(JobStatus).includes(s.toLowerCase() as JobStatus) ? [s.toLowerCase() as JobStatus] : [];
  }
}

/** FATE job ids: a timestamp to the microsecond plus two digits (e.g. 2024050612304512345601). */
export function newFateJobId(now = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}${p(now.getMilliseconds(), 3)}${p(randomInt(0, 100000), 5)}`;
}

export const fateVocabulary = {
  newJobId: () => newFateJobId(),
  jobStatus: fateJobStatus,
  taskStatus: fateTaskStatus,
  statusesFor,
};
