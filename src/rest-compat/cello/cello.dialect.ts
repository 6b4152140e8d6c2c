/**
 * Cello's words for clusters (services/legacy-vocabulary.ts): health
 * spellings and the error messages Cello callers match. Handed by the
 * composition root to the cluster service, whose GraphQL answers carry them.
 * Imports nothing of the project.
 */

/** OK: running with at least one live worker; FAIL: running, no live worker; '' when stopped. */
export function celloHealth(stopped: boolean, liveWorkers: number): string {
  return stopped ? '' : liveWorkers ? 'OK' : 'FAIL';
}

export const celloVocabulary = {
  health: celloHealth,
  invalidConsensusPlugin: 'Invalid consensus_plugin',
  invalidConsensusMode: 'Invalid consensus_mode',
  invalidSize: 'Invalid cluster_size',
  noAvailableCluster: (user: string) => `No available res for ${user}`,
};
