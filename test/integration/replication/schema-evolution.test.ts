/**
 * Schema evolution while streaming (issue 15 item 5), four directions: a
 * column renamed (PostgreSQL sources) and columns widened (int -> bigint, varchar(10) ->
 * varchar(100), decimal(8,2) -> decimal(14,2)) at the source reach the
 * destination in stream order, keeping the values, and rows that need the
 * new shape then arrive exactly. PostgreSQL spells it RENAME COLUMN and ALTER
 * COLUMN ... TYPE; MariaDB MODIFY and CHANGE (keeping the name). MariaDB
 * renames are in schema-renames.test.ts; without binlog_row_metadata=FULL
 * (its row events then carry no column names) one fails the job quoting it.
 * Compared row by row with the database clients; the job stays RUNNING.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, getJob, qname, useReplicationSuite, waitJob } from '../../support/replication.ts';

const read = async (db: DbHandle, table: string, cols: string[]): Promise<string[]> => {
  const expr = db.kind === 'postgres'
    ? `concat_ws('|', ${cols.map((c) => `coalesce("${c}"::text, '~')`).join(', ')})`
    : `CONCAT_WS('|', ${cols.map((c) => `COALESCE(CAST(\`${c}\` AS CHAR), '~')`).join(', ')})`;
  return (await db.query<{ r: string }>(`SELECT ${expr} AS r FROM ${table} ORDER BY id`)).map((x) => x.r);
};

const typeOf = async (db: DbHandle, schema: string, table: string, col: string): Promise<string> => {
  const r = await db.query<{ t: string }>(db.kind === 'postgres'
    ? `SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid JOIN pg_namespace n ON n.oid = k.relnamespace WHERE n.nspname = $1 AND k.relname = $2 AND a.attname = $3`
    : `SELECT COLUMN_TYPE AS t FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?`, [schema, table, col]);
  return String(r[0]?.t ?? '');
};

describe('schema evolution while streaming', () => {
  const { gw, openUniq: open } = useReplicationSuite();

  for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql'], ['mysql', 'mysql'], ['postgres', 'postgres']] as const) {
    it(`${from} -> ${to}: ${from === 'postgres' ? 'RENAME COLUMN and ' : ''}widening type changes, values kept, wider rows exact`, async () => {
      const src = await open(from, 'se_src');
      const dst = await open(to, 'se_dst');
      await src.query(`CREATE TABLE t (id int PRIMARY KEY, n int, label varchar(10), amount decimal(8,2), note varchar(20))`);
      await src.query(`INSERT INTO t VALUES (1, 1, 'one', 1.50, 'a'), (2, 2, 'two', 2.25, 'b')`);
      const srcSchema = from === 'postgres' ? 'public' : src.database;
      const dstSchema = to === 'mysql' ? dst.database : srcSchema;
      const job = await createJob(gw.url, {
        name: uniq('evolve'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: srcSchema, tables: ['t'] }],
        ...(dstSchema !== srcSchema ? { rename: { schemas: { [srcSchema]: dstSchema } } } : {}),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      await src.query(`INSERT INTO t VALUES (3, 3, 'three', 3.75, 'c')`);

      if (from === 'mysql') {
        // MariaDB: MODIFY and a CHANGE that keeps the name (renames: schema-renames.test.ts).
        await src.query('ALTER TABLE t MODIFY n bigint');
        await src.query('ALTER TABLE t CHANGE label label varchar(100), MODIFY COLUMN amount decimal(14,2)');
      } else {
        await src.query('ALTER TABLE t RENAME COLUMN note TO remark');
        await src.query('ALTER TABLE t ALTER COLUMN n TYPE bigint');
        // pgoutput shows the table's shape only with its next row: a rename and a type change of the same column
        // with no row between reach the capture as one change, told from a drop plus an add by attribute number.
        await src.query('ALTER TABLE t RENAME COLUMN label TO title');
        await src.query('ALTER TABLE t ALTER COLUMN title TYPE varchar(100), ALTER COLUMN amount TYPE decimal(14,2)');
      }
      await src.query(`INSERT INTO t VALUES (4, 1099511627776, '${'w'.repeat(80)}', 123456789012.34, 'd')`);
      const [title, remark] = from === 'mysql' ? ['label', 'note'] : ['title', 'remark'];
      await src.query(`UPDATE t SET ${remark} = 'e', n = n + 4294967296 WHERE id = 1`);

      const cols = ['id', 'n', title, 'amount', remark];
      const want = await read(src, 't', cols);
      const table = qname(dst, dstSchema, 't');
      const got = await waitFor(() => read(dst, table, cols).catch(() => []), (r) => r.join() === want.join(), 30_000, 'converged').catch(() => read(dst, table, cols));
      expect(got).toEqual(want);
      expect(await typeOf(dst, dstSchema, 't', 'n')).toBe(to === 'postgres' ? 'bigint' : 'bigint(20)');
      expect(await typeOf(dst, dstSchema, 't', title)).toMatch(/^(character varying|varchar)\(100\)/);
      expect(await typeOf(dst, dstSchema, 't', 'amount')).toMatch(/^(numeric|decimal)\(14,2\)/);
      const j = await getJob(gw.url, job.id);
      expect([j.status, j.error]).toEqual(['RUNNING', null]);
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    });
  }

  it('PostgreSQL: a drop and an add of the same type at the same place stay a drop and an add; ADD COLUMN ... DEFAULT fails the job quoting it', async () => {
    const src = await open('postgres', 'se_da_src');
    const dst = await open('postgres', 'se_da_dst');
    await src.query('CREATE TABLE t (id int PRIMARY KEY, old_note text)');
    await src.query(`INSERT INTO t VALUES (1, 'kept?'), (2, 'kept?')`);
    const job = await createJob(gw.url, { name: uniq('evolve_da'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public', tables: ['t'] }] });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    await src.query(`UPDATE t SET old_note = 'seen' WHERE id = 2`);
    await waitFor(() => read(dst, 't', ['id', 'old_note']).catch(() => []), (r) => r.join() === '1|kept?,2|seen', 30_000, 'streaming rows');
    // No row between: the relation message shows old_note gone and new_note (text, 2nd place) new.
    await src.query('ALTER TABLE t DROP COLUMN old_note');
    await src.query('ALTER TABLE t ADD COLUMN new_note text');
    await src.query(`INSERT INTO t VALUES (3, 'fresh')`);
    await waitFor(() => read(dst, 't', ['id', 'new_note']).catch(() => []), (r) => r.join() === '1|~,2|~,3|fresh', 30_000, 'drop + add');
    expect(await read(dst, 't', ['id', 'new_note'])).toEqual(await read(src, 't', ['id', 'new_note']));

    // A DEFAULT fills the existing rows on the source without a row change: refused, not left NULL.
    await src.query('ALTER TABLE t ADD COLUMN z integer DEFAULT 7');
    await src.query(`INSERT INTO t VALUES (4, 'after', 8)`);
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain('ADD COLUMN "z" integer DEFAULT 7');
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });

  it('MariaDB RENAME COLUMN without binlog_row_metadata=FULL fails the job quoting the statement and naming the setting', async () => {
    const src = await open('mysql', 'se_rn_src');
    const dst = await open('postgres', 'se_rn_dst');
    await src.query('CREATE TABLE t (id int PRIMARY KEY, note varchar(20))');
    // The suite's server runs FULL; the capture reads the setting when it starts.
    await src.query(`SET GLOBAL binlog_row_metadata = 'MINIMAL'`);
    try {
      const job = await createJob(gw.url, { name: uniq('evolve_rn'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database, tables: ['t'] }] });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      const stmt = 'ALTER TABLE t CHANGE note remark varchar(20)';
      await src.query(stmt);
      await src.query(`INSERT INTO t VALUES (1, 'x')`);
      const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'failed');
      expect(failed.status).toBe('FAILED');
      expect(failed.error).toContain(stmt);
      expect(failed.error).toContain('binlog_row_metadata=FULL');
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
    } finally {
      await src.query(`SET GLOBAL binlog_row_metadata = 'FULL'`);
    }
  });
});
