/**
 * DOUBLE values read from MariaDB keep their last digit. mysql2's text
 * parser builds a number of up to 17 characters digit by digit and is off in
 * the last place for many values (90.66666666666667 read as
 * 90.66666666666669), so a MariaDB source's snapshot wrote different doubles
 * than the source held. Compared with the database clients' own text forms.
 */
import { describe, expect, it } from 'vitest';
import { uniq, waitFor } from '../../support/databases.ts';
import { createJob, endpoint, useReplicationSuite, waitJob } from '../../support/replication.ts';

describe('fidelity: MariaDB DOUBLE to either engine, bit for bit', () => {
  const { gw, openUniq } = useReplicationSuite();

  for (const to of ['postgres', 'mysql'] as const) {
    it(`snapshot and stream of g/3, 0.1+0.2 and friends (-> ${to})`, async () => {
      const src = await openUniq('mysql', 'dbl_src');
      const dst = await openUniq(to, 'dbl_dst');
      await src.query(`CREATE TABLE d (id int PRIMARY KEY, v double)`);
      await src.query(`INSERT INTO d SELECT seq, seq / 3e0 FROM seq_1_to_300`);
      await src.query(`INSERT INTO d VALUES (1001, 0.1e0 + 0.2e0), (1002, 1e0 / 7e0), (1003, 123456.789012345e0), (1004, -2.2250738585072014e-308)`);
      const job = await createJob(gw.url, {
        name: uniq('dbl'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
        tables: [{ schema: src.database, tables: ['d'] }], ...(to === 'mysql' ? { rename: { schemas: { [src.database]: dst.database } } } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'streaming');
      await src.query(`INSERT INTO d SELECT seq, seq / 7e0 FROM seq_2001_to_2100`);
      await src.query(`UPDATE d SET v = v / 11e0 WHERE id <= 50`);
      // The shortest text that reads back as the same double, on each engine.
      const want = (await src.query<{ r: string }>(`SELECT CONCAT(id, ':', CAST(v AS CHAR)) AS r FROM d ORDER BY id`)).map((x) => x.r);
      const sql = to === 'postgres'
        ? `SELECT id || ':' || v::text AS r FROM ${src.database}.d ORDER BY id`
        : `SELECT CONCAT(id, ':', CAST(v AS CHAR)) AS r FROM \`${dst.database}\`.d ORDER BY id`;
      const read = async () => (await dst.query<{ r: string }>(sql).catch(() => [])).map((x) => x.r);
      const got = await waitFor(read, (rows) => rows.join() === want.join(), 30_000, 'doubles converged').catch(read);
      expect(got.filter((r, i) => r !== want[i]).slice(0, 5)).toEqual([]);
      expect(got).toHaveLength(want.length);
    });
  }
});
