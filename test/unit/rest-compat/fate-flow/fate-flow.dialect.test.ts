/** FATE-Flow's words: job and task statuses, status filters, job ids. */
import { describe, expect, it } from 'vitest';
import { JobStatus } from '../../../../src/domain/job-model.ts';
import { TaskState } from '../../../../src/domain/task-model.ts';
import { FateStatus, fateJobStatus, fateTaskStatus, newFateJobId, statusesFor } from '../../../../src/rest-compat/fate-flow/fate-flow.dialect.ts';

describe('fateJobStatus', () => {
  it('maps every job status, a timeout failure apart', () => {
    expect(Object.values(JobStatus).map((s) => fateJobStatus(s, null))).toEqual(['waiting', 'running', 'waiting', 'success', 'failed', 'canceled']);
    expect(fateJobStatus(JobStatus.Failed, 'timeout')).toBe(FateStatus.Timeout);
  });
});

describe('fateTaskStatus', () => {
  it('maps task states; anything not started or running again is waiting', () => {
    expect(fateTaskStatus(TaskState.Running)).toBe('running');
    expect(fateTaskStatus(TaskState.Complete)).toBe('success');
    expect(fateTaskStatus(TaskState.Failed)).toBe('failed');
    expect(fateTaskStatus(TaskState.Canceled)).toBe('canceled');
    expect(fateTaskStatus(TaskState.Stopped)).toBe('canceled');
    for (const s of [TaskState.Waiting, TaskState.Queued, TaskState.Retrying, TaskState.Paused]) expect(fateTaskStatus(s)).toBe('waiting');
  });
});

describe('statusesFor', () => {
  it('reads FATE and Tributary status names, in any case', () => {
    expect(statusesFor('waiting')).toEqual([JobStatus.Pending, JobStatus.Paused]);
    expect(statusesFor('READY')).toEqual([JobStatus.Pending, JobStatus.Paused]);
    expect(statusesFor('success')).toEqual([JobStatus.Complete]);
    expect(statusesFor('timeout')).toEqual([JobStatus.Failed]);
    expect(statusesFor('Running')).toEqual([JobStatus.Running]);
    expect(statusesFor('exploded')).toEqual([]);
  });
});

describe('newFateJobId', () => {
  it('is the local time to the millisecond plus five random digits', () => {
    const id = newFateJobId(new Date(2024, 4, 6, 12, 30, 45, 123));
    expect(id).toMatch(/^20240506123045123\d{5}$/);
  });
});
