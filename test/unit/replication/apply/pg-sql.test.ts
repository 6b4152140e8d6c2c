import { describe, expect, it } from 'vitest';
import { lockCheckpointText, PG_LEDGER, writeCheckpointText } from '../../../../src/replication/apply/pg-sql.ts';

/** PostgreSQL's own literal quoting, as pg's escapeLiteral does it for text without backslashes. */
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

describe('ledger statements with literal values', () => {
  it('are the parameterised ledger statements with each $n replaced by its literal', () => {
    expect(lockCheckpointText("job'1", 3, lit)).toBe(PG_LEDGER.lockCheckpoint.replace('$1', "'job''1'").replace('$2', '3'));
    expect(writeCheckpointText('j', 0, '1a.ff.3', lit)).toBe(
      PG_LEDGER.writeCheckpoint.replace('$1', "'j'").replace('$2', '0').replace('$3', "'1a.ff.3'"),
    );
    // A value holding `$2` is not substituted again.
    expect(writeCheckpointText('j$2', 0, 's', lit)).toContain("VALUES ('j$2', 0, 's', now())");
    expect(() => lockCheckpointText('j', 1.5, lit)).toThrow(/not an integer/);
  });
});
