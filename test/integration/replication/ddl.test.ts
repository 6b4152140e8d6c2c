/**
 * DDL through real jobs: CREATE TABLE, ADD COLUMN and DROP COLUMN on a
 * replicated schema reach the destination (MariaDB -> PostgreSQL, MariaDB ->
 * MariaDB, PostgreSQL -> MariaDB); a table renamed inside a whole-schema
 * selection is followed (ALTER ... RENAME TO, RENAME TABLE); unsupported DDL
 * (a rename moving the table to another database, out of the selection)
 * fails the job with a message quoting the statement.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, expectConverged, qname, useReplicationSuite, waitJob } from '../../support/replication.ts';

/** Rows as "id|col=value|..." over the columns the destination has, in column order. */
async function rowsOf(db: DbHandle, table: string): Promise<string[]> {
  const rows = await db.query<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY id`);
  return rows.map((r) => Object.keys(r).sort().map((k) => `${k}=${r[k] === null ? '~' : String(r[k])}`).join('|'));
}

async function columnsOf(db: DbHandle, schema: string, table: string): Promise<string[]> {
  const rows = await db.query<{ c: string }>(db.kind === 'postgres'
    ? `SELECT column_name AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`
    : `SELECT COLUMN_NAME AS c FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`, [schema, table]);
  return rows.map((r) => r.c);
}

describe('DDL on a replicated schema', () => {
  const { gw, openUniq: open } = useReplicationSuite();

  it('MariaDB -> PostgreSQL: CREATE TABLE, ADD/DROP COLUMN applied; ALTER ... RENAME TO followed; RENAME TABLE to another database fails the job quoting it', async () => {
    const src = await open('mysql', 'ddl_m_src');
    const dst = await open('postgres', 'ddl_m_dst');
    const s = src.database;
    await src.query('CREATE TABLE t1 (id int PRIMARY KEY, c1 varchar(20), n int)');
    await src.query(`INSERT INTO t1 VALUES (1, 'a', 1), (2, 'b', 2)`);
    const job = await createJob(gw.url, { name: uniq('ddl_m2p'), source: endpoint(src), destination: endpoint(dst), tables: [{ schema: s }] });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    await expectConverged(src, 't1', dst, qname(dst, s, 't1'), 30_000, rowsOf);

    await src.query('CREATE TABLE t2 (id int PRIMARY KEY, label varchar(30), at datetime(6))');
    await src.query(`INSERT INTO t2 VALUES (1, 'created later', '2024-05-06 07:08:09.123456'), (2, NULL, NULL)`);
    await src.query('ALTER TABLE t1 ADD COLUMN c2 varchar(20)');
    await src.query(`UPDATE t1 SET c2 = CONCAT('x', id); INSERT INTO t1 VALUES (3, 'c', 3, 'x3')`);
    await src.query('ALTER TABLE t1 DROP COLUMN c1');
    await src.query(`INSERT INTO t1 (id, n, c2) VALUES (4, 4, 'x4'); UPDATE t1 SET n = n * 10`);
    await waitFor(() => columnsOf(dst, s, 't1'), (c) => c.join() === 'id,n,c2', 30_000, 'destination columns after ADD/DROP');
    await expectConverged(src, 't1', dst, qname(dst, s, 't1'), 30_000, rowsOf);
    const t2 = await dst.query(`SELECT id, label, to_char(at, 'YYYY-MM-DD HH24:MI:SS.US') AS at FROM ${qname(dst, s, 't2')} ORDER BY id`);
    expect(t2).toEqual([{ id: 1, label: 'created later', at: '2024-05-06 07:08:09.123456' }, { id: 2, label: null, at: null }]);

    await src.query('ALTER TABLE t1 RENAME TO t1_renamed');
    await src.query('INSERT INTO t1_renamed (id, n) VALUES (5, 5)');
    await expectConverged(src, 't1_renamed', dst, qname(dst, s, 't1_renamed'), 30_000, rowsOf);
    expect(await columnsOf(dst, s, 't1')).toEqual([]);

    // Another database: outside the selection (the rows would stop silently).
    const other = await open('mysql', 'ddl_m_other');
    const stmt = `RENAME TABLE t1_renamed TO \`${other.database}\`.t1`;
    await src.query(stmt);
    await src.query(`INSERT INTO \`${other.database}\`.t1 (id, n) VALUES (6, 6)`);
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'job failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain(stmt);
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });

  it('MariaDB -> MariaDB: ADD COLUMN applied; RENAME TABLE followed into the renamed destination database', async () => {
    const src = await open('mysql', 'ddl_mm_src');
    const dst = await open('mysql', 'ddl_mm_dst');
    await src.query('CREATE TABLE t1 (id int PRIMARY KEY, v varchar(20))');
    await src.query(`INSERT INTO t1 VALUES (1, 'a')`);
    const job = await createJob(gw.url, { name: uniq('ddl_m2m'), source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database }], rename: { schemas: { [src.database]: dst.database } } });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    await src.query('ALTER TABLE t1 ADD COLUMN w int');
    await src.query(`INSERT INTO t1 VALUES (2, 'b', 8)`);
    await expectConverged(src, 't1', dst, qname(dst, dst.database, 't1'), 30_000, rowsOf);
    expect(await columnsOf(dst, dst.database, 't1')).toEqual(['id', 'v', 'w']);
    await src.query('RENAME TABLE t1 TO t1_old');
    await src.query(`INSERT INTO t1_old VALUES (3, 'c', 9); UPDATE t1_old SET v = 'z' WHERE id = 1`);
    await expectConverged(src, 't1_old', dst, qname(dst, dst.database, 't1_old'), 30_000, rowsOf);
    expect(await columnsOf(dst, dst.database, 't1')).toEqual([]);
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });

  it('MariaDB -> PostgreSQL: ADD COLUMN with a DEFAULT (existing rows filled without row events) fails the job quoting it', async () => {
    const src = await open('mysql', 'ddl_md_src');
    const dst = await open('postgres', 'ddl_md_dst');
    await src.query('CREATE TABLE t1 (id int PRIMARY KEY, v varchar(20))');
    await src.query(`INSERT INTO t1 VALUES (1, 'a')`);
    const job = await createJob(gw.url, { name: uniq('ddl_def'), source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database }] });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    const stmt = 'ALTER TABLE t1 ADD COLUMN w int NOT NULL DEFAULT 7';
    await src.query(stmt);
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'job failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain(stmt);
    expect(await columnsOf(dst, src.database, 't1')).toEqual(['id', 'v']);
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });

  it('PostgreSQL -> MariaDB: ADD COLUMN and DROP COLUMN applied', async () => {
    const src = await open('postgres', 'ddl_p_src');
    const dst = await open('mysql', 'ddl_p_dst');
    await src.query('CREATE TABLE t1 (id int PRIMARY KEY, a text, b int)');
    await src.query(`INSERT INTO t1 VALUES (1, 'one', 1)`);
    const job = await createJob(gw.url, { name: uniq('ddl_p2m'), source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public' }], rename: { schemas: { public: dst.database } } });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    await src.query('ALTER TABLE t1 ADD COLUMN c varchar(10)');
    await src.query(`INSERT INTO t1 VALUES (2, 'two', 2, 'c2')`);
    await waitFor(() => columnsOf(dst, dst.database, 't1'), (c) => c.join() === 'id,a,b,c', 30_000, 'column added');
    await src.query('ALTER TABLE t1 DROP COLUMN a');
    await src.query(`INSERT INTO t1 VALUES (3, 3, 'c3'); UPDATE t1 SET b = b + 100`);
    await waitFor(() => columnsOf(dst, dst.database, 't1'), (c) => c.join() === 'id,b,c', 30_000, 'column dropped');
    await expectConverged(src, 't1', dst, qname(dst, dst.database, 't1'), 30_000, rowsOf);
    const j = await waitJob(gw.url, job.id, () => true);
    expect(j.status).toBe('RUNNING');
    await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
  });
});
