/**
 * Streaming apply through a running SYNCHRONOUS job, in rows/s, against
 * PostgreSQL's native logical replication in the same run.
 *
 * Topology (all private servers): source PostgreSQL cluster A, destination
 * cluster B, MariaDB source, Redis, and a separate cluster for Tributary's
 * own metadata (so its bookkeeping does not land on either side).
 *
 *   - native: `CREATE PUBLICATION` on A, `CREATE SUBSCRIPTION` on B (default
 *     options, initial copy), wait until the table is synced;
 *   - Tributary PG->PG and MariaDB->PG: a SYNCHRONOUS job through an
 *     in-process App; wait until the snapshot is done and the job streams.
 *
 * Then, identically for each: BENCH_APPLY_ROWS (default 100,000) row changes
 * on the source in transactions of 1,000 rows — half multi-row INSERTs of new
 * rows, half UPDATEs of snapshot rows — then one marker row. Timed from the
 * first source write until the destination holds the marker and the expected
 * row and update counts. Each system runs alone (the previous one is stopped
 * first). Rows/s = row changes / that time.
 *
 * Run alone: `node bin/run-ts.js bench/apply.bench.ts` (prints JSON), or call run().
 */
import { pathToFileURL } from 'node:url';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from '../src/devtools/private-servers.ts';
import {
  createJob, createMariaDb, createPgDb, deleteJob, endpoint, envInt, fillMaria, fillPg, getJob, ITEMS_MARIA, ITEMS_PG, ratio3, round, sleep,
  startGateway, waitJob, waitUntil, type BenchGateway, type BenchResult, type PgDb,
} from './support/harness.ts';

export type { BenchResult };

const TX_ROWS = 1000;

interface Workload {
  /** Rows present before streaming starts (ids 1..base). */
  base: number;
  /** Row changes streamed: base updates + base inserts. */
  changes: number;
}

/** The streamed changes as SQL statements, one transaction each, for either engine. */
function statements(kind: 'pg' | 'maria', w: Workload): string[] {
  const out: string[] = [];
  const fill = kind === 'pg' ? fillPg : fillMaria;
  // Interleave insert and update transactions, as a live source would.
  for (let f = 1; f <= w.base; f += TX_ROWS) {
    const t = Math.min(w.base, f + TX_ROWS - 1);
    out.push(fill(w.base + f, w.base + t));
    out.push(`UPDATE items SET qty = qty + 1, note = 'u' WHERE id BETWEEN ${f} AND ${t}`);
  }
  out.push(`INSERT INTO items (id, name, qty) VALUES (-1, 'marker', 0)`);
  return out;
}

/** Runs the workload on the source and waits for the destination; returns timings in ms. */
async function timeStream(w: Workload, kind: 'pg' | 'maria', exec: (sql: string) => Promise<unknown>, dst: PgDb, table: string, timeoutMs = 20 * 60_000) {
  const t0 = performance.now();
  for (const s of statements(kind, w)) await exec(s);
  const written = performance.now();
  await waitUntil(() => dst.q<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE id = -1`), (r) => r[0]!.n === 1, timeoutMs, 'marker row', 20);
  const expectRows = 2 * w.base + 1;
  const done = await waitUntil(
    () => dst.q<{ n: number; u: number }>(`SELECT count(*)::int AS n, count(*) FILTER (WHERE note = 'u')::int AS u FROM ${table}`),
    (r) => r[0]!.n === expectRows && r[0]!.u === w.base, timeoutMs, 'row and update counts', 20);
  return { writeMs: written - t0, totalMs: done.at - t0 };
}

export async function run(): Promise<BenchResult[]> {
  const changes = Math.max(2 * TX_ROWS, envInt('BENCH_APPLY_ROWS', 100_000));
  const lanes = envInt('BENCH_LANES', 2);
  const w: Workload = { base: Math.floor(changes / 2 / TX_ROWS) * TX_ROWS, changes: 0 };
  w.changes = 2 * w.base;
  const servers: PrivateServer[] = [];
  let gw: BenchGateway | undefined;
  try {
    const [pgA, pgB, pgMeta, maria, redis] = await Promise.all([startPostgres(), startPostgres(), startPostgres(), startMariadb({ serverId: 1 }), startRedis()]);
    servers.push(pgA, pgB, pgMeta, maria, redis);

    // --- native logical replication A -> B
    const nSrc = await createPgDb(pgA, 'native_src');
    const nDst = await createPgDb(pgB, 'native_dst');
    await nSrc.q(ITEMS_PG); await nSrc.q(fillPg(1, w.base));
    await nDst.q(ITEMS_PG);
    await nSrc.q('CREATE PUBLICATION bench_pub FOR TABLE items');
    await nDst.q(`CREATE SUBSCRIPTION bench_sub CONNECTION 'host=127.0.0.1 port=${pgA.port} dbname=${nSrc.name} user=postgres' PUBLICATION bench_pub`);
    await waitUntil(() => nDst.q<{ n: number }>(`SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'`), (r) => r[0]!.n === 0, 120_000, 'subscription sync', 100);
    await waitUntil(() => nDst.q<{ n: number }>('SELECT count(*)::int AS n FROM items'), (r) => r[0]!.n === w.base, 120_000, 'initial copy', 100);
    const native = await timeStream(w, 'pg', (s) => nSrc.q(s), nDst, 'items');
    await nDst.q('DROP SUBSCRIPTION bench_sub');
    await nSrc.close(); await nDst.close();

    gw = await startGateway(pgMeta, redis, 8);
    const runJob = async (source: ReturnType<typeof endpoint>, schema: string, dst: PgDb, exec: (s: string) => Promise<unknown>, kind: 'pg' | 'maria') => {
      const job = await createJob(gw!.url, {
        name: `bench-apply-${kind}`, type: 'SYNCHRONOUS', source, destination: endpoint('POSTGRES', pgB.port, dst.name),
        tables: [{ schema }], parallelWorkers: lanes,
      });
      await waitJob(gw!.url, job.id, (j) => j.progress.phase === 'streaming', 300_000, 'snapshot done', 200);
      await waitUntil(() => dst.q<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.items`), (r) => r[0]!.n === w.base, 120_000, 'snapshot rows', 100);
      // Let the capture and apply tasks start streaming (they poll for the end of the snapshot every 500 ms).
      await sleep(3000);
      const t = await timeStream(w, kind, exec, dst, `${schema}.items`);
      const j = await getJob(gw!.url, job.id);
      await deleteJob(gw!.url, job.id);
      return { ...t, job: j };
    };

    // --- Tributary PG -> PG (A -> B)
    const tSrc = await createPgDb(pgA, 'trib_src');
    const tDst = await createPgDb(pgB, 'trib_dst');
    await tSrc.q(ITEMS_PG); await tSrc.q(fillPg(1, w.base));
    const pgpg = await runJob(endpoint('POSTGRES', pgA.port, tSrc.name), 'public', tDst, (s) => tSrc.q(s), 'pg');
    await tSrc.close(); await tDst.close();

    // --- Tributary MariaDB -> PG
    const mSrc = await createMariaDb(maria, 'msrc');
    await mSrc.q(ITEMS_MARIA); await mSrc.q(fillMaria(1, w.base));
    const mDst = await createPgDb(pgB, 'trib_mdst');
    const mypg = await runJob(endpoint('MYSQL', maria.port, mSrc.name), mSrc.name, mDst, (s) => mSrc.q(s), 'maria');
    await mSrc.close(); await mDst.close();

    const rate = (ms: number) => w.changes / (ms / 1000);
    const s = (ms: number) => +(ms / 1000).toFixed(2);
    const nativeRate = rate(native.totalMs);
    const common = { rowChanges: w.changes, transactions: w.changes / TX_ROWS, rowsPerTransaction: TX_ROWS, lanes, nativeRowsPerSec: round(nativeRate), nativeSeconds: s(native.totalMs), nativeSourceWriteSeconds: s(native.writeMs) };
    const result = (name: string, src: string, t: typeof pgpg): BenchResult => ({
      name,
      metrics: {
        ...common,
        tributaryRowsPerSec: round(rate(t.totalMs)),
        tributarySeconds: s(t.totalMs),
        tributarySourceWriteSeconds: s(t.writeMs),
        tributaryCatchUpAfterWritesSeconds: s(t.totalMs - t.writeMs),
        nativeCatchUpAfterWritesSeconds: s(native.totalMs - native.writeMs),
      },
      ratio: { label: `Tributary ${src}->PG rows/s / native PG logical replication rows/s`, value: ratio3(rate(t.totalMs) / nativeRate) },
      target: '>= 50k rows/s',
    });
    return [
      result('apply PostgreSQL -> PostgreSQL (synchronous job vs native logical replication)', 'PG', pgpg),
      result('apply MariaDB -> PostgreSQL (synchronous job vs native PG logical replication)', 'MariaDB', mypg),
    ];
  } finally {
    await gw?.close().catch(() => undefined);
    for (const sv of servers.reverse()) await sv.stop().catch(() => undefined);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => { console.log(JSON.stringify(r, null, 2)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
