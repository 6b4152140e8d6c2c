/**
 * Chaos: worker processes SIGKILLed at random points (snapshot chunks in
 * flight, streaming, apply), each replaced by a fresh one, while writers keep
 * changing the MariaDB source, from before the snapshot on (the keyless
 * ledger as well: its snapshot copy and the stream overlap, see
 * docs/consistency.md). Ends with items and the keyless ledger equal row by
 * row at the PostgreSQL destination and the whole feed checked.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../support/gateway.ts';
import { uniq } from '../support/databases.ts';
import { createJob, endpoint, getJob, qname, startWriter } from '../support/replication.ts';
import { checkFeed, count, expectSameRows, report, rng, SCALE, sleep, startLedger, type TributaryProc, useChaosSuite, useMariaToPostgres, waitFor } from './support.ts';

const KILLS = count(5, 20);
// CI: enough rows (40 chunks of 500) that the first kill lands while snapshot chunks are in flight.
const ROWS = count(20_000, 100_000);

describe('chaos: worker SIGKILL', () => {
  const suite = useChaosSuite();
  const { gw, procs } = suite;
  const { src, dst } = useMariaToPostgres(suite, 'wk', ROWS);

  it(`converges with no loss and no duplicate after ${KILLS} worker SIGKILLs`, async () => {
    const t0 = Date.now();
    let worker: TributaryProc = await procs.worker();
    const job = await createJob(gw.url, {
      name: uniq('chaos_wk'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst),
      tables: [{ schema: src.database }], parallelWorkers: 3, chunkRows: SCALE === 'full' ? 5000 : 500,
    });
    // Both writers run from the start: the keyless ledger too is written while its snapshot chunk is read
    // (and re-read after a kill); its copy must hold exactly what the stream then skips.
    const items = startWriter(src, 'items', { firstNewId: ROWS + 1, maxId: ROWS, durationMs: 600_000, seed: 7 });
    const ledger = startLedger(src);

    const rnd = rng(2024);
    const where: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      if (i === 0) {
        await waitFor(() => getJob(gw.url, job.id), (j) => j.tasks.some((t: any) => t.kind === 'snapshot-chunk' && t.status === 'running'), 60_000, 'snapshot chunks running');
        await sleep(rnd(0, SCALE === 'full' ? 800 : 200));
      } else {
        await sleep(rnd(500, SCALE === 'full' ? 6000 : 2500));
      }
      const j = await getJob(gw.url, job.id);
      where.push(`${j.progress.phase}:${j.tasks.filter((t: any) => t.status === 'running').map((t: any) => t.kind).join('+')}`);
      await worker.kill('SIGKILL');
      worker = await procs.worker();
    }
    await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming'
      && j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running'), 90_000, 'tasks running after the last kill');
    await sleep(1500);
    await items.stop();
    const last = await ledger.stop();

    const dstQ = (t: string) => qname(dst, src.database, t);
    const rows = await expectSameRows(src, dst, dstQ, { items: true });
    const feed = await checkFeed(gw.config.redisUrl, gw.config.queuePrefix, job.name, last, 'feed');
    expect(last).toBeGreaterThan(100);
    expect({ missing: feed.missing.length, duplicated: feed.duplicated.length, lost: rows.lost, dup: rows.duplicated }).toEqual({ missing: 0, duplicated: 0, lost: 0, dup: 0 });
    const final = await getJob(gw.url, job.id);
    expect(final.status).toBe('RUNNING');
    expect(final.error).toBeNull();
    report('worker SIGKILL', KILLS, feed.missing.length + rows.lost, feed.duplicated.length + rows.duplicated,
      `items ${rows.items} rows, ledger ${last}, feed ${feed.changes} changes; kills at ${where.join(' ')}; ${Math.round((Date.now() - t0) / 1000)} s`);
    await gql(gw.url, `mutation { stopJob(id: "${job.id}") { status } }`);
  }, 600_000);
});
