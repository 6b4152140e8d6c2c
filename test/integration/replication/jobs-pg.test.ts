import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startTestGateway, gql, type TestGateway } from '../../support/gateway.ts';
import { connInput, pgDatabase, waitFor, type DbHandle } from '../../support/databases.ts';

describe('PostgreSQL -> PostgreSQL synchronous job', () => {
  let gw: TestGateway; let src: DbHandle; let dst: DbHandle;
  beforeAll(async () => {
    gw = await startTestGateway();
    src = await pgDatabase(inject('pgUrl'), 'pgsrc_a');
    dst = await pgDatabase(inject('pgUrl'), 'pgdst_a');
    await src.query('CREATE TABLE items (id int primary key, name text, price numeric(10,2), updated timestamptz default now())');
    await src.query(`INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 5000) g`);
  });
  afterAll(async () => { await gw?.close(); await src?.close(); await dst?.close(); });

  it('snapshots, streams, pauses and resumes', async () => {
    const r = await gql(gw.url, `mutation($i: JobInput!) { createJob(input: $i) { id name status } }`, {
      i: { name: 'pg2pg', type: 'SYNCHRONOUS', source: { ...connInput(src), kind: 'POSTGRES' }, destination: { ...connInput(dst), kind: 'POSTGRES' }, tables: [{ schema: 'public' }], parallelWorkers: 2 },
    });
    expect(r.body.errors).toBeUndefined();
    const id = r.body.data.createJob.id;
    await waitFor(async () => (await dst.query('SELECT count(*)::int AS n FROM public.items'))[0].n, (n) => n === 5000, 60_000, 'snapshot rows');
    await src.query(`INSERT INTO items SELECT g, 'new ' || g, g FROM generate_series(5001, 5100) g`);
    await src.query(`UPDATE items SET name = 'changed' WHERE id <= 10`);
    await src.query(`DELETE FROM items WHERE id BETWEEN 11 AND 20`);
    await waitFor(async () => (await dst.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE name = 'changed')::int AS c FROM public.items`))[0], (v: any) => v.n === 5090 && v.c === 10, 60_000, 'streamed changes');
    const job = await gql(gw.url, `{ job(id: "${id}") { status udupStatus progress { phase rowsDone percent chunksDone chunksTotal } metrics { changesCaptured rowsApplied lagMs } tasks { kind name status } } }`);
    console.log(JSON.stringify(job.body.data.job));
    const p = await gql(gw.url, `mutation { pauseJob(id: "${id}") { status udupStatus } }`);
    expect(p.body.data.pauseJob.udupStatus).toBe('pause');
    // Paused means the tasks stop: wait until no task of the job is running any more.
    await waitFor(async () => (await gql(gw.url, `{ job(id: "${id}") { tasks { kind status } } }`)).body.data.job.tasks,
      (t: any[]) => t.filter((x) => x.kind === 'capture' || x.kind === 'apply').every((x) => x.status !== 'running'), 20_000, 'tasks paused');
    await src.query(`INSERT INTO items VALUES (9999, 'while paused', 1)`);
    await new Promise((res) => setTimeout(res, 1500));
    expect((await dst.query('SELECT count(*)::int AS n FROM public.items WHERE id = 9999'))[0].n).toBe(0);
    await gql(gw.url, `mutation { resumeJob(id: "${id}") { status } }`);
    await waitFor(async () => (await dst.query('SELECT count(*)::int AS n FROM public.items WHERE id = 9999'))[0].n, (n) => n === 1, 60_000, 'row after resume');
    const del = await gql(gw.url, `mutation { deleteJob(id: "${id}") }`);
    expect(del.body.data.deleteJob).toBe(true);
  });
});
