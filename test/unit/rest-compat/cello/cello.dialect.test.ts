/** Cello's words for clusters. */
import { describe, expect, it } from 'vitest';
import { celloHealth, celloVocabulary } from '../../../../src/rest-compat/cello/cello.dialect.ts';

describe('cello dialect', () => {
  it('spells health OK, FAIL, or empty when stopped', () => {
    expect(celloHealth(false, 2)).toBe('OK');
    expect(celloHealth(false, 0)).toBe('FAIL');
    expect(celloHealth(true, 3)).toBe('');
  });
  it('words the errors Cello callers match', () => {
    expect([celloVocabulary.invalidConsensusPlugin, celloVocabulary.invalidConsensusMode, celloVocabulary.invalidSize])
      .toEqual(['Invalid consensus_plugin', 'Invalid consensus_mode', 'Invalid cluster_size']);
    expect(celloVocabulary.noAvailableCluster('alice')).toBe('No available res for alice');
  });
});
