/**
 * Issue 18: a task that keeps failing the same way does not retry forever
 * behind a RUNNING job. After TASK_MAX_REPEATED_FAILURES attempts in a row
 * with the same error at the same position the job goes FAILED, with the
 * error, the task and the position in GraphQL, the job log and /metrics.
 * A destination DDL that can never succeed (a PostgreSQL table with columns
 * "Id" and id into MariaDB, whose column names ignore case) fails the job at
 * once, naming the table and both columns.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, ITEMS, waitJob } from '../../support/replication.ts';

const LIMIT = 3;

describe('tasks failing the same way fail their job', () => {
  let gw: TestGateway;
  const handles: DbHandle[] = [];
  beforeAll(async () => { gw = await startTestGateway({ taskMaxRepeatedFailures: LIMIT }); });
  afterAll(async () => {
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });

  it('a destination that rejects every attempt the same way: FAILED after the limit, with task, position and error', async () => {
    const src = await mariaDatabase(inject('mariaUrl'), uniq('ft_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('ft_dst')); handles.push(dst);
    await src.query(ITEMS.create(src));
    await src.query(ITEMS.fill(src, 20));
    // The destination table exists already, with a trigger that refuses every row (SQLSTATE P0001: not a
    // data or schema error, so classified retriable; it used to be retried forever behind a RUNNING job).
    await dst.query(`CREATE SCHEMA "${src.database}"`);
    await dst.query(`CREATE TABLE "${src.database}".items (id int PRIMARY KEY, name varchar(100), qty int, price numeric(12,2), at timestamp(6), note text)`);
    await dst.query(`CREATE FUNCTION "${src.database}".refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'rows refused by policy'; END $$`);
    await dst.query(`CREATE TRIGGER refuse BEFORE INSERT ON "${src.database}".items FOR EACH ROW EXECUTE FUNCTION "${src.database}".refuse()`);
    const t0 = Date.now();
    const job = await createJob(gw.url, {
      name: uniq('failing'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: src.database, tables: ['items'] }], parallelWorkers: 1,
    });
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 90_000, 'job failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(new RegExp(`failed ${LIMIT} times in a row with the same error`));
    expect(failed.error).toMatch(/rows refused by policy/);
    expect(failed.tasks.some((t: any) => t.status === 'failed' && /times in a row/.test(t.error ?? ''))).toBe(true);
    const logs = await gql(gw.url, `query($id: ID!) { job(id: $id) { logs(last: 200) { level message } } }`, { id: job.id });
    const messages = (logs.body.data?.job?.logs ?? []) as { level: string; message: string }[];
    expect(messages.filter((l) => /retrying \(\d of 3 with this error\)/.test(l.message)).length).toBeGreaterThanOrEqual(LIMIT - 1);
    expect(messages.some((l) => l.level === 'error' && /times in a row/.test(l.message))).toBe(true);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`tributary_task_failures_total\\{job="${job.name}",kind="[a-z-]+",outcome="failed"\\} \\d`));
    console.log(`FAILED ${Date.now() - t0} ms after createJob: ${failed.error}`);
  });

  it('PostgreSQL columns "Id" and id into MariaDB: FAILED at once, naming the table and both columns', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('ci_src')); handles.push(src);
    const dst = await mariaDatabase(inject('mariaUrl'), uniq('ci_dst')); handles.push(dst);
    await src.query(`CREATE TABLE twins ("Id" int PRIMARY KEY, id int)`);
    await src.query(`INSERT INTO twins VALUES (1, 10), (2, 20)`);
    const t0 = Date.now();
    const job = await createJob(gw.url, {
      name: uniq('twins'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: 'public', tables: ['twins'] }], rename: { schemas: { public: dst.database } },
    });
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 60_000, 'job failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/columns "Id" and "id" differ only in case/);
    expect(failed.error).toMatch(/twins/);
    console.log(`FAILED ${Date.now() - t0} ms after createJob: ${failed.error}`);
  });
});
