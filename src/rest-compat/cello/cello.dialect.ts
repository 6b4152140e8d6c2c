/**
 * Cello's words for clusters (services/legacy-vocabulary.ts): health
 * spellings and the error messages Cello callers match. Handed by the
 * composition root to the cluster service, whose GraphQL answers carry them.
 * Imports only its own module's vocabulary (cello.mapping.ts).
 */
import { CelloMessage } from './cello.mapping.ts';

/** OK: running with at least one live worker; FAIL: running, no live worker; '' when stopped. */
export function celloHealth(stopped: boolean, liveWorkers: number): string {
  return stopped ? '' : liveWorkers ? 'OK' : 'FAIL';
}

export const celloVocabulary = {
  health: celloHealth,
  invalidConsensusPlugin: CelloMessage.InvalidPlugin,
  invalidConsensusMode: CelloMessage.InvalidMode,
  invalidSize: CelloMessage.InvalidSize,
  noAvailableCluster: (user: string) => `No available res for ${user}`,
};
