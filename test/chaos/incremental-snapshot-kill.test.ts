/**
 * Chaos: the worker running a job's capture is SIGKILLed in the middle of an
 * incremental snapshot (snapshotTables) and replaced, twice, while writers
 * keep changing the MariaDB source (items: inserts, updates, deletes; the
 * keyless ledger: inserts). The request resumes from its last saved chunk
 * (its chunk count never goes back) and ends done; items and the ledger are
 * then equal row by row at the PostgreSQL destination, no ledger row lost or
 * doubled. The job has no initial snapshot, so every row that was there
 * before the writers started reaches the destination through the
 * incremental snapshot alone.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../support/gateway.ts';
import { uniq } from '../support/databases.ts';
import { createJob, endpoint, getJob, qname, startWriter } from '../support/replication.ts';
import { count, expectSameRows, report, sleep, startLedger, type TributaryProc, useChaosSuite, useMariaToPostgres, waitFor } from './support.ts';

const ROWS = count(20_000, 100_000);
const CHUNK = count(500, 2000);

async function incremental(url: string, jobId: string): Promise<any> {
  const r = await gql(url, `query($id: ID!) { job(id: $id) { status error progress { phase incrementalSnapshot { id status rowsDone chunksDone chunksTotal error } } } }`, { id: jobId });
  if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
  return r.body.data.job;
}

describe('chaos: worker SIGKILL during snapshotTables', () => {
  const suite = useChaosSuite();
  const { gw, procs } = suite;
  const { src, dst } = useMariaToPostgres(suite, 'isk', ROWS);

  it('resumes from its last chunk and converges after SIGKILLs mid-copy', async () => {
    const t0 = Date.now();
    let worker: TributaryProc = await procs.worker();
    const job = await createJob(gw.url, {
      name: uniq('chaos_isk'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), snapshot: false,
      tables: [{ schema: src.database }], parallelWorkers: 3, chunkRows: CHUNK,
    });
    await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    const items = startWriter(src, 'items', { firstNewId: ROWS + 1, maxId: ROWS, durationMs: 600_000, seed: 15 });
    const ledger = startLedger(src);
    await sleep(500);
    const r = await gql(gw.url, `mutation($id: ID!, $t: [TableSelectionInput!]!) { snapshotTables(jobId: $id, tables: $t) { id } }`,
      { id: job.id, t: [{ schema: src.database, tables: ['items', 'ledger'] }] });
    expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();

    const kills: string[] = [];
    let lastSeen = 0;
    for (const atChunks of [3, 12]) {
      const j = await waitFor(() => incremental(gw.url, job.id), (x) => (x.progress.incrementalSnapshot?.chunksDone ?? 0) >= atChunks || x.status !== 'RUNNING', 120_000, `${atChunks} chunks copied`);
      expect(j.status).toBe('RUNNING');
      const s = j.progress.incrementalSnapshot;
      expect(s.status).toBe('running');
      lastSeen = s.chunksDone;
      kills.push(`${s.chunksDone}/${s.chunksTotal}`);
      await worker.kill('SIGKILL');
      worker = await procs.worker();
      // The request is resumed, not started over: its saved chunk count never goes back.
      const after = await incremental(gw.url, job.id);
      expect(after.progress.incrementalSnapshot.chunksDone).toBeGreaterThanOrEqual(lastSeen);
    }
    const done = await waitFor(() => incremental(gw.url, job.id), (x) => ['done', 'failed'].includes(x.progress.incrementalSnapshot?.status) || x.status !== 'RUNNING', 240_000, 'incremental snapshot done');
    expect(done.status).toBe('RUNNING');
    const s = done.progress.incrementalSnapshot;
    expect(s.status, s.error ?? '').toBe('done');
    expect(s.chunksDone).toBe(s.chunksTotal);
    expect(s.chunksDone).toBeGreaterThanOrEqual(ROWS / CHUNK);
    await sleep(1500);
    await items.stop();
    const last = await ledger.stop();

    const rows = await expectSameRows(src, dst, (t) => qname(dst, src.database, t), { items: true });
    expect(last).toBeGreaterThan(100);
    expect({ lost: rows.lost, dup: rows.duplicated }).toEqual({ lost: 0, dup: 0 });
    const final = await getJob(gw.url, job.id);
    expect(final.status).toBe('RUNNING');
    expect(final.error).toBeNull();
    report('worker SIGKILL during snapshotTables', kills.length, rows.lost, rows.duplicated,
      `items ${rows.items} rows, ledger ${last}; killed at chunks ${kills.join(' ')} of the copy; ${s.rowsDone} rows in ${s.chunksDone} chunks; ${Math.round((Date.now() - t0) / 1000)} s`);
    await gql(gw.url, `mutation { stopJob(id: "${job.id}") { status } }`);
  }, 600_000);
});
