/**
 * Udup's words for Tributary's job states (services/legacy-vocabulary.ts):
 * pending, running, pause, complete, dead. Used by the Udup routes, and
 * handed by the composition root to the services for the deprecated GraphQL
 * field `Job.udupStatus`. Imports nothing of the project.
 */

/** A job status (Tributary's own word, or its GraphQL upper-case spelling) as Udup says it. */
export function udupStatus(status: string): string {
  switch (status.toLowerCase()) {
    case 'pending': return 'pending';
    case 'running': return 'running';
    case 'paused': return 'pause';
    case 'complete': return 'complete';
    case 'failed':
    case 'canceled': return 'dead';
    default: return status.toLowerCase();
  }
}

export const udupVocabulary = { jobStatus: udupStatus };
