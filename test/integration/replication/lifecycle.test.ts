/**
 * Job lifecycle end to end through GraphQL: jobEvents over graphql-ws
 * (snapshot progress, status changes), job(id) tasks/progress/metrics,
 * pause/resume without loss or duplicates, stop -> CANCELED, delete drops the
 * PostgreSQL slot, publication and feed; a MIGRATION job completes by itself.
 */
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, expectConverged, ITEMS, qname, startWriter, waitJob } from '../../support/replication.ts';
import { pgCaptureName } from '../../../src/replication/capture/pg-logical.capture.ts';
import { feedKeys } from '../../../src/replication/feed/feed-keys.ts';

interface JobEvent { kind: string; status: string | null; message: string | null; progress: { phase: string; percent: number | null; chunksDone: number; chunksTotal: number; rowsDone: number } | null }

function subscribeJob(client: Client, id: string): { events: JobEvent[]; stop(): void } {
  const events: JobEvent[] = [];
  const stop = client.subscribe<{ jobEvents: JobEvent }>(
    { query: `subscription($id: ID!) { jobEvents(id: $id) { kind status message progress { phase percent chunksDone chunksTotal rowsDone } } }`, variables: { id } },
    { next: (v) => { if (v.data) events.push(v.data.jobEvents); else events.push({ kind: 'error', status: null, message: JSON.stringify(v.errors), progress: null }); }, error: () => undefined, complete: () => undefined },
  );
  return { events, stop };
}

const ledgerRead = async (db: DbHandle, t: string) => (await db.query<{ seq: number }>(`SELECT seq FROM ${t} ORDER BY seq`)).map((r) => String(r.seq));

describe('job lifecycle', () => {
  let gw: TestGateway; let client: Client; let redis: Redis;
  const handles: DbHandle[] = [];
  beforeAll(async () => {
    gw = await startTestGateway();
    client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
    redis = new Redis(inject('redisUrl'), { lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    await client?.dispose();
    redis?.disconnect();
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });

  it('PostgreSQL -> PostgreSQL: events, metrics, pause/resume without loss or duplicates, stop, delete drops slot, publication and feed', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('lc_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('lc_dst')); handles.push(dst);
    await src.query(ITEMS.create(src));
    await src.query(ITEMS.fill(src, 30_000));
    await src.query('CREATE TABLE ledger (seq int NOT NULL, payload text)');
    const name = uniq('lifecycle');
    // Created paused, so the subscription is there before anything runs.
    const job = await createJob(gw.url, { name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public' }], parallelWorkers: 2, chunkRows: 5000, paused: true });
    expect(job.status).toBe('PENDING');
    const sub = subscribeJob(client, job.id);
    await waitFor(async () => sub.events.length, (n) => n >= 1, 10_000, 'first job event');
    expect((await gql(gw.url, `mutation { resumeJob(id: "${job.id}") { status } }`)).body.data.resumeJob.status).toBe('RUNNING');
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'snapshot done');
    await waitFor(async () => sub.events, (ev) => ev.some((e) => e.progress?.phase === 'streaming'), 10_000, 'streaming event');
    const snapEvents = sub.events.filter((e) => e.progress && e.progress.chunksDone > 0);
    expect(snapEvents.length).toBeGreaterThan(0);
    expect(snapEvents.some((e) => e.progress!.chunksDone < e.progress!.chunksTotal && e.progress!.percent! > 0 && e.progress!.percent! < 100)).toBe(true);
    expect(sub.events.some((e) => e.kind === 'status' && e.status === 'RUNNING')).toBe(true);

    // Streaming: metrics and tasks.
    let seq = 0;
    const ledger = async (n: number) => { const v = Array.from({ length: n }, () => { seq++; return `(${seq}, 'p${seq}')`; }); await src.query(`INSERT INTO ledger VALUES ${v.join(', ')}`); };
    for (let i = 0; i < 20; i++) await ledger(5);
    await src.query(`UPDATE items SET note = 'streamed' WHERE id <= 100`);
    await expectConverged(src, 'ledger', dst, qname(dst, 'public', 'ledger'), 30_000, ledgerRead);
    // Capture and apply flush their metrics on their own 1 s timers: wait for both.
    const streaming = await waitJob(gw.url, job.id, (j) => j.metrics.rowsApplied > 0 && j.metrics.lagMs !== null && j.metrics.changesCaptured >= 200, 15_000, 'metrics');
    expect(streaming.progress).toMatchObject({ phase: 'streaming', percent: 100 });
    // items in 5000-row chunks plus the (empty, keyless) ledger as one chunk.
    expect(streaming.progress.chunksTotal).toBeGreaterThanOrEqual(7);
    expect(streaming.progress.chunksDone).toBe(streaming.progress.chunksTotal);
    expect(streaming.metrics.changesCaptured).toBeGreaterThanOrEqual(200);
    expect(streaming.metrics.lagMs).toBeGreaterThanOrEqual(0);
    const kinds = streaming.tasks.map((t: any) => t.kind);
    expect(kinds).toEqual(expect.arrayContaining(['capture', 'apply', 'snapshot', 'snapshot-chunk']));
    expect(streaming.tasks.filter((t: any) => t.kind === 'snapshot-chunk').every((t: any) => t.status === 'complete')).toBe(true);
    expect(streaming.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running')).toBe(true);

    // Pause while a writer runs; nothing moves while paused; resume catches up exactly.
    const writer = startWriter(src, 'items', { firstNewId: 30_001, maxId: 30_000, durationMs: 60_000, seed: 3 });
    const ledgerLoop = (async () => { for (let i = 0; i < 150; i++) { await ledger(2); await new Promise((r) => setTimeout(r, 20)); } })();
    await new Promise((r) => setTimeout(r, 700));
    const paused = (await gql(gw.url, `mutation { pauseJob(id: "${job.id}") { status udupStatus } }`)).body.data.pauseJob;
    expect(paused).toEqual({ status: 'PAUSED', udupStatus: 'pause' });
    await waitJob(gw.url, job.id, (j) => j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'paused'), 20_000, 'tasks paused');
    await waitFor(async () => sub.events, (ev) => ev.some((e) => e.status === 'PAUSED'), 10_000, 'PAUSED event');
    const atPause = (await dst.query('SELECT count(*)::int AS n FROM public.ledger'))[0].n;
    await new Promise((r) => setTimeout(r, 1500));
    expect((await dst.query('SELECT count(*)::int AS n FROM public.ledger'))[0].n).toBe(atPause);
    expect(seq).toBeGreaterThan(atPause);
    await gql(gw.url, `mutation { resumeJob(id: "${job.id}") { status } }`);
    await ledgerLoop;
    const stats = await writer.stop();
    await expectConverged(src, 'items', dst, qname(dst, 'public', 'items'), 60_000);
    await expectConverged(src, 'ledger', dst, qname(dst, 'public', 'ledger'), 30_000, ledgerRead);
    expect((await dst.query('SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM public.ledger'))[0]).toEqual({ n: seq, d: seq });
    console.log(`lifecycle: paused with ${atPause}/${seq} ledger rows applied; after resume ${seq} rows, no duplicates; items writer ${JSON.stringify(stats)}; ${sub.events.length} job events`);

    // Stop -> CANCELED, tasks stop.
    const stopped = (await gql(gw.url, `mutation { stopJob(id: "${job.id}") { status udupStatus } }`)).body.data.stopJob;
    expect(stopped).toEqual({ status: 'CANCELED', udupStatus: 'dead' });
    await waitFor(async () => sub.events, (ev) => ev.some((e) => e.status === 'CANCELED'), 10_000, 'CANCELED event');
    await waitJob(gw.url, job.id, (j) => j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status !== 'running'), 20_000, 'tasks stopped');

    // Delete: slot, publication and feed go away.
    const slot = pgCaptureName(job.id);
    expect((await src.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot]))[0].n).toBe(1);
    expect((await src.query('SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1', [slot]))[0].n).toBe(1);
    const keys = feedKeys(gw.config.queuePrefix, name);
    expect(await redis.exists(keys.stream)).toBe(1);
    expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
    expect((await src.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot]))[0].n).toBe(0);
    expect((await src.query('SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1', [slot]))[0].n).toBe(0);
    expect(await redis.exists(keys.stream, keys.meta, keys.columns)).toBe(0);
    const gone = await gql(gw.url, `{ job(id: "${job.id}") { id } }`);
    expect(gone.body).toEqual({ data: { job: null } });
    sub.stop();
  });

  it('MariaDB -> PostgreSQL MIGRATION completes by itself after snapshot and catch-up', async () => {
    const src = await mariaDatabase(inject('mariaUrl'), uniq('mig_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('mig_dst')); handles.push(dst);
    await src.query(ITEMS.create(src));
    await src.query(ITEMS.fill(src, 50_000));
    const job = await createJob(gw.url, { name: uniq('migration'), type: 'MIGRATION', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database }], parallelWorkers: 2, chunkRows: 2500 });
    expect(job.type).toBe('MIGRATION');
    // Changes during the snapshot are part of the catch-up; changes after its end position are not (the migration
    // catches up to where the source was when the snapshot finished). So the writer stops while chunks are still
    // being copied: a writer still running when the snapshot ended (a slow, loaded machine) made this test expect
    // rows the migration rightly left out.
    const writer = startWriter(src, 'items', { firstNewId: 50_001, maxId: 50_000, durationMs: 1000, seed: 11 });
    let seen: any;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 10))) {
      seen = (await gql(gw.url, `query($id: ID!) { job(id: $id) { status progress { phase chunksDone chunksTotal } } }`, { id: job.id })).body.data.job;
      if (seen.progress.chunksDone >= 1 || !['pending', 'snapshot'].includes(seen.progress.phase) || seen.status !== 'RUNNING') break;
    }
    const stats = await writer.stop();
    expect(seen.progress, 'the writer stopped while the snapshot was still copying').toMatchObject({ phase: 'snapshot' });
    const done = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 90_000, 'migration complete');
    expect(done).toMatchObject({ status: 'COMPLETE', udupStatus: 'complete', error: null });
    expect(done.progress).toMatchObject({ phase: 'complete', percent: 100 });
    const rows = await expectConverged(src, 'items', dst, qname(dst, src.database, 'items'), 5_000);
    expect(done.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').map((t: any) => t.status)).toEqual(['complete', 'complete']);
    console.log(`migration: ${rows} rows, writer ${JSON.stringify(stats)}, applied ${done.metrics.rowsApplied}`);
    // A complete job stays complete: writes after it are not replicated.
    await src.query(`INSERT INTO items (id, name) VALUES (999999, 'after completion')`);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await dst.query(`SELECT count(*)::int AS n FROM ${qname(dst, src.database, 'items')} WHERE id = 999999`))[0].n).toBe(0);
    expect((await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`)).body.data.deleteJob).toBe(true);
  });
});
