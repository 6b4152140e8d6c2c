/**
 * Issue 18: a worker SIGKILLed in the middle of a large source transaction
 * (after some of its pieces reached the feed) loses nothing and duplicates
 * nothing. Workers run as `tributary worker` processes, so their peak RSS
 * (VmHWM) is the capture + apply memory for a transaction of ROWS rows.
 * A keyless ledger makes any change applied twice an extra row.
 * LARGE_TXN_CRASH_ROWS scales it (default 100,000).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, workerProcesses } from '../../support/gateway.ts';
import { uniq, waitFor } from '../../support/databases.ts';
import { createJob, endpoint, feedLength, getJob, qname, useReplicationSuite } from '../../support/replication.ts';
import { feedKeys } from '../../../src/replication/feed/feed-keys.ts';

const ROWS = Number(process.env.LARGE_TXN_CRASH_ROWS ?? 100_000);

/** Peak resident memory of a live process, MiB (Linux). */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

describe(`worker SIGKILLed inside a ${ROWS}-row source transaction`, () => {
  const { gw, openUniq } = useReplicationSuite({}, { worker: false });
  let redis: Redis;
  const workers = workerProcesses(gw, { lockMs: 3000, logPrefix: 'tributary-largetx-' });
  const { start: startWorker, logDir } = workers;

  beforeAll(() => { redis = new Redis(inject('redisUrl')); });
  // Runs before the suite's own teardown (vitest's 'stack' order): workers and Redis go before the gateway.
  afterAll(() => {
    workers.killAll();
    redis?.disconnect();
  });

  for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
    it(`${from} -> ${to}`, async () => {
      const t0 = Date.now();
      const src = await openUniq(from, 'ltc_src');
      const dst = await openUniq(to, 'ltc_dst');
      await src.query(`CREATE TABLE ledger (seq int NOT NULL, payload varchar(40))`);
      const srcSchema = from === 'postgres' ? 'public' : src.database;
      const dstSchema = to === 'mysql' ? dst.database : srcSchema;
      let worker = await startWorker();
      const name = uniq('largetxcrash');
      const job = await createJob(gw.url, {
        name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: srcSchema, tables: ['ledger'] }],
        parallelWorkers: 2, ...(dstSchema !== srcSchema ? { rename: { schemas: { [srcSchema]: dstSchema } } } : {}),
      });
      await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming' && j.tasks.filter((t: any) => t.kind === 'capture').every((t: any) => t.status === 'running'), 120_000, 'streaming');
      await new Promise((r) => setTimeout(r, 1000));
      const fill = from === 'postgres'
        ? `INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g`
        : `INSERT INTO ledger SELECT seq, MD5(seq) FROM seq_1_to_${ROWS}`;
      await src.query(fill);
      // Kill once some pieces of the transaction are in the feed and before all of them are.
      const stream = feedKeys(gw.config.queuePrefix, name).stream;
      const inFeed = await waitFor(() => feedLength(redis, stream), (n) => n >= 10_000, 120_000, 'first pieces in the feed');
      const peakBefore = peakRssMiB(worker.pid!);
      worker.kill('SIGKILL');
      await once(worker, 'exit');
      worker = await startWorker();
      const count = async () => Number((await dst.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${qname(dst, dstSchema, 'ledger')}`))[0]!.n);
      await waitFor(count, (n) => n >= ROWS, Math.max(120_000, ROWS * 2), 'all rows at the destination');
      await new Promise((r) => setTimeout(r, 1500));
      const counts = (await dst.query<{ n: unknown; d: unknown; m: unknown }>(`SELECT count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m FROM ${qname(dst, dstSchema, 'ledger')}`))[0]!;
      expect([Number(counts.n), Number(counts.d), Number(counts.m)]).toEqual([ROWS, ROWS, ROWS]);
      const j = await getJob(gw.url, job.id);
      expect(j.status).toBe('RUNNING');
      const peakAfter = peakRssMiB(worker.pid!);
      console.log(`${from} -> ${to}: SIGKILL with ${inFeed} of ${ROWS} changes of one transaction in the feed; destination exactly ${ROWS} rows, no duplicates, ${Date.now() - t0} ms; worker peak RSS ${peakBefore} MiB (killed) / ${peakAfter} MiB (replacement); logs ${logDir}`);
      await gql(gw.url, `mutation { deleteJob(id: "${job.id}") }`);
      worker.kill('SIGTERM');
      await once(worker, 'exit');
    }, 600_000);
  }
});
