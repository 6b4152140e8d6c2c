/** Udup's words for job states. */
import { describe, expect, it } from 'vitest';
import { JobStatus } from '../../../../src/domain/job-model.ts';
import { udupStatus, udupVocabulary } from '../../../../src/rest-compat/udup/udup.dialect.ts';

describe('udupStatus', () => {
  it('maps every job status to Udup\'s pending, running, pause, complete, dead', () => {
    expect(Object.values(JobStatus).map((s) => [s, udupVocabulary.jobStatus(s)])).toEqual([
      ['pending', 'pending'], ['running', 'running'], ['paused', 'pause'], ['complete', 'complete'], ['failed', 'dead'], ['canceled', 'dead'],
    ]);
  });
  it('reads GraphQL\'s upper-case spelling too', () => {
    expect(udupStatus('PAUSED')).toBe('pause');
    expect(udupStatus('CANCELED')).toBe('dead');
  });
});
