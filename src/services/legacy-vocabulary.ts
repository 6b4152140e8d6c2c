/**
 * The words of the legacy APIs that GraphQL still speaks (deprecated fields,
 * FATE-shaped pipeline queries, Cello's messages): the services take them
 * through their constructors, and the composition root (src/app.ts) hands
 * in each dialect's own file, `src/rest-compat/<dialect>/<dialect>.dialect.ts`.
 * So no service holds a dialect word and the REST layer owns them all.
 */
import type { JobStatus } from '../domain/job-model.ts';

/** Udup (the deprecated `Job.udupStatus`). */
export interface UdupVocabulary {
  /** A job status as Udup says it (pending, running, pause, dead, complete). */
  jobStatus(status: JobStatus): string;
}

/** FATE-Flow (pipeline job ids, the deprecated `fateStatus` fields, status filters). */
export interface FateVocabulary {
  /** A new pipeline job id. */
  newJobId(): string;
  jobStatus(status: JobStatus, reason: string | null | undefined): string;
  taskStatus(state: string): string;
  /** A FATE or Tributary status name -> the job statuses it covers (empty: none). */
  statusesFor(name: string): JobStatus[];
}

/** Cello (cluster health spellings and the messages Cello callers match). */
export interface CelloVocabulary {
  /** Health of a cluster from its state and its live workers. */
  health(stopped: boolean, liveWorkers: number): string;
  invalidConsensusPlugin: string;
  invalidConsensusMode: string;
  invalidSize: string;
  noAvailableCluster(user: string): string;
}

export interface LegacyVocabulary {
  udup: UdupVocabulary;
  fate: FateVocabulary;
  cello: CelloVocabulary;
}
