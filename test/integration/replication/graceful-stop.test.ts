/**
 * Graceful stop of replication tasks: worker processes stopped with SIGTERM
 * (not killed) while snapshot chunks are copied, then while capture and apply
 * stream. The stopped worker must hand its tasks back, never record one as
 * completed for work it did not do; the next worker resumes them and the work
 * is done exactly once: every chunk complete once, the destination equal to
 * the source row by row, and the keyless ledger with one row per source row.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, expectConverged, getJob, ITEMS, qname, startWriter } from '../../support/replication.ts';
import { Processes } from '../../chaos/support.ts';
import { QueueSet } from '../../../src/queues/queue-set.ts';

const ROWS = 60_000;

describe('graceful stop: capture, apply and snapshot tasks', () => {
  let gw: TestGateway; let src: DbHandle; let dst: DbHandle; let procs: Processes; let queues: QueueSet; let meta: pg.Pool;
  beforeAll(async () => {
    gw = await startTestGateway({}, { worker: false });
    procs = new Processes({ databaseUrl: gw.config.databaseUrl, redisUrl: gw.config.redisUrl, queuePrefix: gw.config.queuePrefix, secretKey: gw.config.secretKey! });
    queues = new QueueSet({ redis: gw.config, prefix: gw.config.queuePrefix });
    meta = new pg.Pool({ connectionString: gw.config.databaseUrl, max: 2 });
    src = await mariaDatabase(inject('mariaUrl'), uniq('gs_src'));
    dst = await pgDatabase(inject('pgUrl'), uniq('gs_dst'));
    await src.query(ITEMS.create(src));
    await src.query(ITEMS.fill(src, ROWS));
    await src.query('CREATE TABLE ledger (seq int NOT NULL, payload varchar(40)) ENGINE=InnoDB');
  });
  afterAll(async () => {
    await procs?.killAll();
    await queues?.close(); await meta?.end();
    await gw?.close();
    await src?.close(); await dst?.close();
  });

  /** BullMQ's record of this job's tasks: state and (for completed ones) the task row's status in the store. */
  async function bullTasks(jobId: string) {
    const jobs = await queues.get().getJobs(['completed', 'failed', 'active', 'waiting', 'delayed', 'waiting-children', 'prioritized']);
    const mine = jobs.filter((j) => j && (j.data as { jobId?: string }).jobId === jobId);
    const rows = (await meta.query<{ id: string; status: string }>('SELECT id, status FROM tasks WHERE job_id = $1', [jobId])).rows;
    const status = new Map(rows.map((r) => [r.id, r.status]));
    return Promise.all(mine.map(async (j) => ({ kind: j.name, state: await j.getState(), task: status.get((j.data as { taskId: string }).taskId), returnvalue: j.returnvalue })));
  }

  /** After a SIGTERM: nothing completed that the store does not have done, and capture/apply are back in the queue. */
  async function expectHandedBack(jobId: string, label: string) {
    const tasks = await bullTasks(jobId);
    const why = `${label}: ${JSON.stringify(tasks)}`;
    for (const t of tasks.filter((x) => x.state === 'completed')) {
      expect(['snapshot-chunk', 'snapshot'], why).toContain(t.kind); // capture and apply never complete while the job runs
      expect(t.task, why).toBe('complete');
    }
    expect(tasks.filter((t) => t.state === 'failed'), why).toEqual([]);
    for (const kind of ['capture', 'apply']) {
      const t = tasks.filter((x) => x.kind === kind);
      expect(t.length, why).toBe(1);
      expect(['waiting', 'delayed'], why).toContain(t[0]!.state); // back in the queue, not completed or failed
    }
    return tasks;
  }

  it('hands the tasks back at SIGTERM and the next worker finishes them exactly once', async () => {
    let worker = await procs.worker();
    const job = await createJob(gw.url, {
      name: uniq('gstop'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: src.database }], parallelWorkers: 2, chunkRows: 2000,
    });
    const items = startWriter(src, 'items', { firstNewId: ROWS + 1, maxId: ROWS, durationMs: 600_000, seed: 7 });
    let ledgerSeq = 0; let ledgerStop = false; let ledger: Promise<void> = Promise.resolve();
    try {
      // 1. SIGTERM while snapshot chunks are being copied.
      await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'snapshot' && j.tasks.some((t: any) => t.kind === 'snapshot-chunk' && t.status === 'running'), 60_000, 'snapshot chunks running');
      await worker.kill('SIGTERM');
      expect(worker.child.exitCode, 'worker exits 0 after SIGTERM').toBe(0);
      const atSnapshot = await expectHandedBack(job.id, 'SIGTERM during the snapshot');
      const chunkStates = atSnapshot.filter((t) => t.kind === 'snapshot-chunk').map((t) => t.state);
      expect(chunkStates.filter((s) => s !== 'completed').length, JSON.stringify(chunkStates)).toBeGreaterThan(0);

      // 2. A new worker finishes the snapshot; SIGTERM it while capture and apply stream.
      worker = await procs.worker();
      await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming' && j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running'), 120_000, 'streaming');
      ledger = (async () => {
        while (!ledgerStop) {
          ledgerSeq++;
          await src.query(`INSERT INTO ledger VALUES (${ledgerSeq}, 'p${ledgerSeq}')`);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await new Promise((r) => setTimeout(r, 2000));
      await worker.kill('SIGTERM');
      expect(worker.child.exitCode, 'worker exits 0 after SIGTERM').toBe(0);
      await expectHandedBack(job.id, 'SIGTERM while streaming');

      // 3. A third worker resumes capture and apply; the result is exactly the source.
      worker = await procs.worker();
      await waitFor(() => getJob(gw.url, job.id), (j) => j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running'), 60_000, 'capture and apply running again');
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await items.stop();
      ledgerStop = true; await ledger;
    }

    await expectConverged(src, 'items', dst, qname(dst, src.database, 'items'), 60_000);
    const ledgerRows = async (db: DbHandle, t: string) => (await db.query<{ seq: number }>(`SELECT seq FROM ${t} ORDER BY seq`)).map((r) => String(r.seq));
    await expectConverged(src, 'ledger', dst, qname(dst, src.database, 'ledger'), 30_000, ledgerRows);
    const counts = (await dst.query(`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM ${qname(dst, src.database, 'ledger')}`))[0];
    expect(counts).toEqual({ n: ledgerSeq, d: ledgerSeq });

    const chunks = (await bullTasks(job.id)).filter((t) => t.kind === 'snapshot-chunk');
    expect(chunks.length).toBeGreaterThanOrEqual(ROWS / 2000);
    expect(chunks.every((c) => c.state === 'completed' && c.task === 'complete'), JSON.stringify(chunks)).toBe(true);
    const final = await getJob(gw.url, job.id);
    expect(final.status).toBe('RUNNING');
    expect(final.error).toBeNull();
    await worker.kill('SIGTERM');
  }, 300_000);
});
