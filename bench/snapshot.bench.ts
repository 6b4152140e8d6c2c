/**
 * Snapshot (initial copy) MariaDB -> PostgreSQL, against pgloader in the same run.
 *
 *   - Tributary: a real MIGRATION job through an in-process App (gateway +
 *     workers, BullMQ on a private Redis) copying `bench.items` (BENCH_ROWS
 *     rows, default 1,000,000) into a fresh PostgreSQL database; timed from
 *     the createJob mutation to status COMPLETE, and separately the snapshot
 *     phase from the job's own log ("snapshot planned" -> "snapshot done").
 *   - pgloader: `pgloader mysql://... postgresql://...` loading the same
 *     MariaDB database into another fresh PostgreSQL database on the same
 *     server (its defaults: create tables, COPY, build indexes), timed as the
 *     process's wall time. Missing pgloader -> ratio unavailable, with a note.
 *
 * Run alone: `node bin/run-ts.js bench/snapshot.bench.ts` (prints JSON), or call run().
 */
import { pathToFileURL } from 'node:url';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from '../src/devtools/private-servers.ts';
import {
  loadAverage, quietDown, createJob, createMariaDb, createPgDb, deleteJob, endpoint, envInt, fillMaria, hasCommand, ITEMS_MARIA, pgUrl, ratio3, round,
  startGateway, timeCommand, waitJob, type BenchGateway, type BenchResult,
} from './support/harness.ts';

export type { BenchResult };

const logAt = (logs: { at: string; message: string }[], prefix: string): number | undefined => {
  const l = logs.find((x) => x.message.startsWith(prefix));
  return l ? Date.parse(l.at) : undefined;
};

export async function run(): Promise<BenchResult> {
  const rows = envInt('BENCH_ROWS', 1_000_000);
  const chunkRows = envInt('BENCH_CHUNK_ROWS', 20_000);
  const workers = envInt('BENCH_WORKERS', 4);
  const servers: PrivateServer[] = [];
  let gw: BenchGateway | undefined;
  try {
    const [maria, pgs, redis] = await Promise.all([startMariadb({ serverId: 1 }), startPostgres(), startRedis()]);
    servers.push(maria, pgs, redis);
    const src = await createMariaDb(maria, 'bench');
    await src.q(ITEMS_MARIA);
    for (let from = 1; from <= rows; from += 250_000) await src.q(fillMaria(from, Math.min(rows, from + 249_999)));
    await src.q('ANALYZE TABLE items');
    await src.close();

    // --- Tributary
    gw = await startGateway(pgs, redis, workers);
    const dst = await createPgDb(pgs, 'dst_tributary');
    // The load of the 1M-row fill (or of the bench before) passes first; each side's load is recorded after it.
    await quietDown();
    const t0 = Date.now();
    const p0 = performance.now();
    const job = await createJob(gw.url, {
      name: 'bench-snapshot', type: 'MIGRATION', source: endpoint('MYSQL', maria.port, 'bench'), destination: endpoint('POSTGRES', pgs.port, dst.name),
      tables: [{ schema: 'bench' }], chunkRows, parallelWorkers: 2,
    });
    const done = await waitJob(gw.url, job.id, (j) => j.status === 'COMPLETE', 30 * 60_000, 'migration COMPLETE', 100);
    const totalMs = performance.now() - p0;
    const tributaryLoad = loadAverage();
    const copied = Number((await dst.q<{ n: string }>('SELECT count(*) AS n FROM bench.items'))[0]!.n);
    if (copied !== rows) throw new Error(`Tributary copied ${copied} rows, expected ${rows}`);
    const planned = logAt(done.logs, 'snapshot planned');
    const snapDone = logAt(done.logs, 'snapshot done');
    const snapshotMs = planned && snapDone ? snapDone - planned : undefined;
    const startupMs = planned ? planned - t0 : undefined;
    const completeAt = logAt(done.logs, 'migration complete');
    const tailMs = snapDone && completeAt ? completeAt - snapDone : undefined;
    if (process.env.BENCH_DEBUG) console.error(done.logs.map((l) => `${l.at} ${l.message}`).join('\n'));
    await deleteJob(gw.url, job.id);
    await gw.close(); gw = undefined;
    await dst.close();

    // --- pgloader, same source, fresh database on the same PostgreSQL server
    let pgloader: { ms: number; rows: number; load: number } | undefined;
    let pgloaderNote = '';
    if (!hasCommand('pgloader')) {
      pgloaderNote = 'pgloader is not installed (apt-get install -y pgloader): ratio unavailable.';
    } else {
      const pdst = await createPgDb(pgs, 'dst_pgloader');
      await quietDown();
      const r = await timeCommand('pgloader', ['--no-ssl-cert-verification', `mysql://root@127.0.0.1:${maria.port}/bench`, pgUrl(pgs, pdst.name)], { timeoutMs: 30 * 60_000 });
      const n = await pdst.q<{ n: string }>('SELECT count(*) AS n FROM bench.items').then((x) => Number(x[0]!.n), () => 0);
      await pdst.close();
      if (r.code !== 0 || n !== rows) pgloaderNote = `pgloader failed (exit ${r.code}, ${n} rows loaded): ${r.out.slice(-600).replace(/\s+/g, ' ')}`;
      else pgloader = { ms: r.ms, rows: n, load: loadAverage() };
    }

    const tribRate = rows / (totalMs / 1000);
    const snapRate = snapshotMs ? rows / (snapshotMs / 1000) : undefined;
    const pglRate = pgloader ? pgloader.rows / (pgloader.ms / 1000) : undefined;
    return {
      name: 'snapshot MariaDB -> PostgreSQL (migration job vs pgloader)',
      metrics: {
        rows,
        chunkRows,
        workerConcurrency: workers,
        tributaryJobSeconds: +(totalMs / 1000).toFixed(2),
        tributaryJobRowsPerSec: round(tribRate),
        tributarySnapshotPhaseSeconds: snapshotMs ? +(snapshotMs / 1000).toFixed(2) : 'n/a',
        tributarySnapshotPhaseRowsPerSec: snapRate ? round(snapRate) : 'n/a',
        tributaryCreateToPlannedSeconds: startupMs !== undefined ? +(startupMs / 1000).toFixed(2) : 'n/a',
        tributarySnapshotDoneToCompleteSeconds: tailMs !== undefined ? +(tailMs / 1000).toFixed(2) : 'n/a',
        pgloaderSeconds: pgloader ? +(pgloader.ms / 1000).toFixed(2) : 'n/a',
        pgloaderRowsPerSec: pglRate ? round(pglRate) : 'n/a',
        snapshotPhaseVsPgloader: snapRate && pglRate ? ratio3(snapRate / pglRate) : 'n/a',
        tributaryLoadAverage: tributaryLoad,
        pgloaderLoadAverage: pgloader ? pgloader.load : 'n/a',
      },
      ...(pglRate ? { ratio: { label: 'Tributary job rows/s (createJob -> COMPLETE) / pgloader rows/s', value: ratio3(tribRate / pglRate) } } : {}),
      target: '>= 1.5',
      notes: pgloaderNote || undefined,
    };
  } finally {
    await gw?.close().catch(() => undefined);
    for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => { console.log(JSON.stringify(r, null, 2)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
