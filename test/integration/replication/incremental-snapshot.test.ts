/**
 * Issue 15 items 1 and 2 end to end: snapshotTables (whole tables, then a
 * `where` subset) and addTables / removeTables on a running job, in the four
 * directions, while writers keep inserting, updating and deleting on a keyed
 * table and on a keyless ledger (duplicate rows). The job is created without
 * a snapshot, so the destination holds only what the stream carried until the
 * incremental snapshot copies the rest; source and destination must then be
 * equal row by row (the ledger as a multiset).
 */
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, waitFor } from '../../support/databases.ts';
import { createJob, describeJob, endpoint, expectConverged, getJob, ITEMS, qname, startWriter, useReplicationSuite } from '../../support/replication.ts';
import { LEDGER, expectLedgerEqual, snapshotState, startLedgerWriter } from '../../support/incremental.ts';
import { feedKeys } from '../../../src/replication/feed/feed-keys.ts';

const ROWS = 5000;
const EXTRA_ROWS = 3000;

describe('incremental snapshots while streaming (snapshotTables, addTables, removeTables)', () => {
  const { gw, open } = useReplicationSuite();
  /** Writers still running when a case fails are stopped before the next one. */
  const stops: (() => Promise<unknown>)[] = [];
  let client: Client;
  // Hooks run after the suite's gateway starts and (vitest's 'stack' order) before it closes.
  beforeAll(() => { client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 }); });
  afterEach(async () => { for (const stop of stops.splice(0)) await stop().catch(() => undefined); });
  afterAll(async () => { await client?.dispose(); });

  const cases: { name: string; src: 'mysql' | 'postgres'; dst: 'mysql' | 'postgres' }[] = [
    { name: 'PostgreSQL -> PostgreSQL', src: 'postgres', dst: 'postgres' },
    { name: 'MariaDB -> PostgreSQL', src: 'mysql', dst: 'postgres' },
    { name: 'PostgreSQL -> MariaDB', src: 'postgres', dst: 'mysql' },
    { name: 'MariaDB -> MariaDB', src: 'mysql', dst: 'mysql' },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const t0 = Date.now();
      const src = await open(c.src, uniq(`inc_src_${c.src}`));
      const dst = await open(c.dst, uniq(`inc_dst_${c.dst}`));
      await src.query(ITEMS.create(src));
      await src.query(ITEMS.fill(src, ROWS));
      await src.query(ITEMS.create(src, 'extra'));
      await src.query(ITEMS.fill(src, EXTRA_ROWS, 'extra'));
      await src.query(LEDGER.create(src));
      await src.query(LEDGER.fill(src, 600));
      const srcSchema = c.src === 'postgres' ? 'public' : src.database;
      const dstSchema = c.dst === 'mysql' ? dst.database : srcSchema;
      const rename = dstSchema !== srcSchema ? { schemas: { [srcSchema]: dstSchema } } : undefined;
      // No initial snapshot: the destination only gets what the stream carries until snapshotTables copies the rest.
      const job = await createJob(gw.url, {
        name: uniq('incsnap'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), snapshot: false,
        tables: [{ schema: srcSchema, tables: ['items', 'ledger'] }], parallelWorkers: 4, chunkRows: 700, ...(rename ? { rename } : {}),
      });
      await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
      const writer = startWriter(src, 'items', { firstNewId: ROWS + 1, maxId: ROWS, durationMs: 60_000, seed: 3 + c.name.length });
      const ledgerWriter = startLedgerWriter(src, 60_000, 11 + c.name.length);
      stops.push(writer.stop, ledgerWriter.stop);
      await new Promise((r) => setTimeout(r, 500));

      // Progress is published on the job's subscription too.
      const events: any[] = [];
      const unsubscribe = client.subscribe<{ jobEvents: any }>(
        { query: `subscription($id: ID!) { jobEvents(id: $id) { kind progress { phase percent incrementalSnapshot { id status chunksDone percent } } } }`, variables: { id: job.id } },
        { next: (v) => { if (v.data) events.push(v.data.jobEvents); }, error: () => undefined, complete: () => undefined },
      );
      stops.push(async () => unsubscribe());

      // 1. Whole tables, while both writers write.
      const r1 = await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]!) { snapshotTables(jobId: $id, tables: $t) { id progress { phase incrementalSnapshot { id status } } } }`,
        { id: job.id, t: [{ schema: srcSchema, tables: ['items', 'ledger'] }] });
      expect(r1.body.errors, JSON.stringify(r1.body.errors)).toBeUndefined();
      const req1 = r1.body.data.snapshotTables.progress.incrementalSnapshot.id as string;
      const done1 = await snapshotState(gw.url, job.id, req1);
      expect(done1.status, JSON.stringify(done1)).toBe('done');
      expect(done1.chunksDone).toBeGreaterThanOrEqual(ROWS / 700);
      expect(done1.percent).toBe(100);
      await waitFor(async () => events, (e) => e.some((x) => x.progress?.incrementalSnapshot?.id === req1 && x.progress.incrementalSnapshot.status === 'done'), 10_000, 'done on jobEvents');
      const seen = events.filter((x) => x.progress?.incrementalSnapshot?.id === req1);
      expect(seen.some((x) => x.progress.phase === 'incremental-snapshot' && x.progress.incrementalSnapshot.status === 'running' && x.progress.incrementalSnapshot.chunksDone > 0)).toBe(true);
      unsubscribe();
      const during = writer.stats.inserts + writer.stats.updates + writer.stats.deletes;
      expect(during).toBeGreaterThan(0);

      // 2. A subset by `where`: rows removed behind the job's back at the destination come back, no others.
      const dstItems = qname(dst, dstSchema, 'items');
      await dst.query(`DELETE FROM ${dstItems} WHERE id <= 1500 AND id % 3 = 0`);
      const r2 = await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]!) { snapshotTables(jobId: $id, tables: $t, where: "id <= 1500") { progress { incrementalSnapshot { id } } } }`,
        { id: job.id, t: [{ schema: srcSchema, tables: ['items'] }] });
      expect(r2.body.errors, JSON.stringify(r2.body.errors)).toBeUndefined();
      const done2 = await snapshotState(gw.url, job.id, r2.body.data.snapshotTables.progress.incrementalSnapshot.id);
      expect(done2.status, JSON.stringify(done2)).toBe('done');
      expect(done2.rowsDone).toBeLessThanOrEqual(1500);
      // A `where` the copy cannot honour is refused by the mutation itself: keyless tables, columns the table lacks.
      const refused = async (t: unknown, where: string) => (await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]!, $w: String) { snapshotTables(jobId: $id, tables: $t, where: $w) { id } }`, { id: job.id, t, w: where })).body.errors?.[0];
      const keyless = await refused([{ schema: srcSchema, tables: ['ledger'] }], 'id <= 10');
      expect(keyless?.extensions?.code, JSON.stringify(keyless)).toBe('BAD_USER_INPUT');
      expect(keyless?.message).toMatch(/keyless: .*ledger/);
      const unknownColumn = await refused([{ schema: srcSchema, tables: ['items'] }], 'no_such_column = 1');
      expect(unknownColumn?.extensions?.code, JSON.stringify(unknownColumn)).toBe('BAD_USER_INPUT');

      // 3. addTables: `extra` joins the capture and is backfilled while a writer writes it.
      const extraWriter = startWriter(src, 'extra', { firstNewId: EXTRA_ROWS + 1, maxId: EXTRA_ROWS, durationMs: 60_000, seed: 99 });
      stops.push(extraWriter.stop);
      const r3 = await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]!) { addTables(jobId: $id, tables: $t) { status progress { incrementalSnapshot { id reason } } } }`,
        { id: job.id, t: [{ schema: srcSchema, tables: ['extra'] }] });
      expect(r3.body.errors, JSON.stringify(r3.body.errors)).toBeUndefined();
      expect(r3.body.data.addTables.progress.incrementalSnapshot.reason).toBe('addTables');
      const done3 = await snapshotState(gw.url, job.id, r3.body.data.addTables.progress.incrementalSnapshot.id);
      expect(done3.status, JSON.stringify(done3)).toBe('done');
      await new Promise((r) => setTimeout(r, 1000));

      const stats = await writer.stop();
      const ledgerStats = await ledgerWriter.stop();
      const extraStats = await extraWriter.stop();
      const rows = await expectConverged(src, 'items', dst, dstItems, 60_000, undefined, () => describeJob(gw.url, job.id));
      const extraRows = await expectConverged(src, 'extra', dst, qname(dst, dstSchema, 'extra'), 60_000, undefined, () => describeJob(gw.url, job.id));
      const ledgerRows = await expectLedgerEqual(src, 'ledger', dst, qname(dst, dstSchema, 'ledger'), 60_000);

      // 4. removeTables: `extra` is no longer captured; its rows stay at the destination.
      const r4 = await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]!) { removeTables(jobId: $id, tables: $t) { status } }`,
        { id: job.id, t: [{ schema: srcSchema, tables: ['extra'] }] });
      expect(r4.body.errors, JSON.stringify(r4.body.errors)).toBeUndefined();
      // The restarted capture prepares first (PostgreSQL: the publication loses the table) and then streams.
      // (Task rows are shared by runs: the old run's 'stopped' can land after the new run's 'running'.)
      if (c.src === 'postgres') {
        await waitFor(() => src.query(`SELECT count(*) AS n FROM pg_publication_tables WHERE tablename = 'extra'`), (r) => Number(r[0].n) === 0, 60_000, 'extra dropped from the publication');
      }
      await new Promise((r) => setTimeout(r, 3000));
      await src.query(`INSERT INTO extra (id, name) VALUES (900001, 'after remove')`);
      await src.query(`INSERT INTO items (id, name) VALUES (900001, 'after remove')`);
      await waitFor(() => dst.query(`SELECT count(*) AS n FROM ${dstItems} WHERE id = 900001`), (r) => Number(r[0].n) === 1, 30_000, 'items still streaming');
      expect(Number((await dst.query(`SELECT count(*) AS n FROM ${qname(dst, dstSchema, 'extra')} WHERE id = 900001`))[0].n)).toBe(0);
      expect(Number((await dst.query(`SELECT count(*) AS n FROM ${qname(dst, dstSchema, 'extra')}`))[0].n)).toBe(extraRows);

      const j = await getJob(gw.url, job.id);
      expect(j.status).toBe('RUNNING');
      expect(j.error).toBeNull();
      console.log(`${c.name}: items ${rows}, extra ${extraRows}, ledger ${ledgerRows} rows equal; writers ${JSON.stringify(stats)} ledger ${JSON.stringify(ledgerStats)} extra ${JSON.stringify(extraStats)}; `
        + `snapshotTables ${done1.rowsDone} rows / ${done1.chunksDone} chunks, where ${done2.rowsDone} rows, addTables ${done3.rowsDone} rows; ${Date.now() - t0} ms`);
      expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
    });
  }

  it('Udup PUT /v1/job/{id} with a longer ReplicateDoDb captures and backfills the new table (subscribe job: into the feed)', async () => {
    const src = await open('mysql', uniq('inc_udup'));
    await src.query(ITEMS.create(src));
    await src.query(ITEMS.create(src, 'extra'));
    await src.query(`INSERT INTO extra (id, name) SELECT seq, CONCAT('xtra-', seq) FROM seq_1_to_${EXTRA_ROWS}`);
    const u = new URL(inject('mariaUrl'));
    const conn = { Host: u.hostname, Port: Number(u.port), User: 'root', Password: '' };
    const name = uniq('udup-add');
    const body = (tables: string[]) => ({
      Name: name, Type: 'subscribe',
      Tasks: [{ Type: 'Src', Driver: 'MySQL', Config: { ReplicateDoDb: [{ TableSchema: src.database, Tables: tables.map((t) => ({ TableName: t })) }], ConnectionConfig: conn } }],
    });
    const res = await fetch(`${gw.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(['items'])) });
    expect(res.status, await res.clone().text()).toBe(200);
    const job = (await gql(gw.url, `query($n: String) { jobs(name: $n) { edges { node { id } } } }`, { n: name })).body.data.jobs.edges[0].node;
    await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming' && j.tasks.some((t: any) => t.kind === 'capture' && t.status === 'running'), 60_000, 'streaming');
    const put = await fetch(`${gw.url}/v1/job/${job.id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(['items', 'extra'])) });
    expect(put.status, await put.clone().text()).toBe(200);
    const j = await gql(gw.url, `query($id: ID!) { job(id: $id) { progress { incrementalSnapshot { id reason tables } } } }`, { id: job.id });
    const req = j.body.data.job.progress.incrementalSnapshot;
    expect(req.reason).toBe('updateJob');
    expect(req.tables).toEqual([`${src.database}.extra`]);
    // Written after the PUT: streamed, not only copied.
    await src.query(`INSERT INTO extra (id, name) VALUES (${EXTRA_ROWS + 1}, 'xtra-${EXTRA_ROWS + 1}')`);
    const done = await snapshotState(gw.url, job.id, req.id);
    expect(done.status, JSON.stringify(done)).toBe('done');
    const redis = new Redis(inject('redisUrl'));
    try {
      const ids = await waitFor(async () => {
        const entries = await redis.xrange(feedKeys(gw.config.queuePrefix, name).stream, '-', '+');
        return new Set(entries.flatMap(([, fields]) => [...fields.join(' ').matchAll(/xtra-(\d+)/g)].map((m) => Number(m[1]))));
      }, (set) => set.size >= EXTRA_ROWS + 1, 30_000, 'extra rows in the feed');
      expect(ids.size).toBe(EXTRA_ROWS + 1);
    } finally {
      redis.disconnect();
    }
    expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
  });
});
