/**
 * Streaming apply through a running SYNCHRONOUS job, in rows/s, against
 * native replication in the same run: PostgreSQL logical replication
 * (`CREATE SUBSCRIPTION`) for a PostgreSQL destination, a MariaDB replica
 * (`CHANGE MASTER TO ... MASTER_LOG_FILE/POS`, one SQL thread) for a MariaDB
 * destination.
 *
 * Topology (all private servers): PostgreSQL clusters A (source) and B
 * (destination), MariaDB servers M1 (source) and M2 (destination / replica),
 * Redis, and a PostgreSQL cluster for Tributary's own metadata.
 *
 * Workload, identical for every system: BENCH_APPLY_ROWS (default 200,000, as
 * issue 12 sets it) row changes in transactions of BENCH_TX_ROWS rows (default
 * "1000,100": the whole set runs once per size, natives included): half
 * multi-row INSERTs of new rows, half UPDATEs of rows present before, then a
 * marker row. The writer is `psql` / `mariadb` in its own process (as an
 * application would be: it shares neither Tributary's event loop nor its CPU
 * accounting). Timed from the writer's start until the destination holds the
 * marker and the expected row and update counts. Each system runs alone.
 *
 * Reported per run: rows/s, catch-up after the writer finished, and the CPU
 * seconds each party used (Tributary's process, source server, destination
 * server, Redis, metadata server), since on 2 shared cores the CPU a system
 * needs per change is what decides its throughput, whatever the load.
 *
 * Run alone: `node bin/run-ts.js bench/apply.bench.ts` (prints JSON), or call run(). BENCH_APPLY_PATHS,
 * BENCH_TX_ROWS, BENCH_LANES and BENCH_WARMUP_ROWS (an untimed pre-roll, see WARM_FROM) narrow or vary it.
 */
import { pathToFileURL } from 'node:url';
import { binlogRowStats } from '../src/replication/apply/mysql-binlog-rows.ts';
import { feedImageStats } from '../src/replication/feed/feed-codec-wire.ts';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from '../src/devtools/private-servers.ts';
import {
  cpuMeter, quietDown, createJob, createMariaDb, createPgDb, deleteJob, endpoint, envInt, fillMaria, fillPg, getJob, ITEMS_MARIA, ITEMS_PG, loadAverage,
  processTreeCpuSeconds, profileWindow, ratio3, round, selfCpuSeconds, sleep, startGateway, waitJob, waitUntil, writeFromClient, type BenchGateway, type BenchResult, type MariaDb, type PgDb,
} from './support/harness.ts';

export type { BenchResult };

type Engine = 'pg' | 'maria';

interface Workload { base: number; changes: number; txRows: number }

/** The streamed changes as SQL statements, one transaction each, for either engine. */
function statements(kind: Engine, w: Workload): string[] {
  const out: string[] = [];
  const fill = kind === 'pg' ? fillPg : fillMaria;
  // Interleave insert and update transactions, as a live source would.
  for (let f = 1; f <= w.base; f += w.txRows) {
    const t = Math.min(w.base, f + w.txRows - 1);
    out.push(fill(w.base + f, w.base + t));
    out.push(`UPDATE items SET qty = qty + 1, note = 'u' WHERE id BETWEEN ${f} AND ${t}`);
  }
  out.push(`INSERT INTO items (id, name, qty) VALUES (-1, 'marker', 0)`);
  return out;
}

/**
 * `probe` is three primary-key lookups (the marker, the last inserted row, the last updated one): the
 * cheap check polled while the run goes on. `counts` scans the table (tens of milliseconds of server
 * CPU at 200,000 rows), so it runs only once the probe finds all three: polled every 20 ms from the
 * start, the scans cost the destination more CPU than the apply itself and slowed the slower system
 * most (docs/benchmarks.md, "fourth round").
 */
interface Dest { kind: Engine; probe(base: number): Promise<number>; counts(): Promise<{ marker: number; n: number; u: number }> }

const probeSql = (table: string, base: number) =>
  `SELECT count(*) AS n FROM ${table} WHERE id IN (-1, ${2 * base}) OR (id = ${base} AND note = 'u')`;

const pgDest = (db: PgDb, table: string): Dest => ({
  kind: 'pg',
  probe: async (base) => Number((await db.q<{ n: string }>(probeSql(table, base)))[0]!.n),
  counts: async () => (await db.q<{ marker: number; n: number; u: number }>(
    `SELECT count(*) FILTER (WHERE id = -1)::int AS marker, count(*)::int AS n, count(*) FILTER (WHERE note = 'u')::int AS u FROM ${table}`))[0]!,
});
const mariaDest = (db: MariaDb, table: string): Dest => ({
  kind: 'maria',
  probe: async (base) => Number((await db.q<{ n: string }>(probeSql(table, base)))[0]!.n),
  counts: async () => {
    const r = (await db.q<{ marker: string; n: string; u: string }>(`SELECT COALESCE(SUM(id = -1), 0) AS marker, COUNT(*) AS n, COALESCE(SUM(note = 'u'), 0) AS u FROM ${table}`))[0]!;
    return { marker: Number(r.marker), n: Number(r.n), u: Number(r.u) };
  },
});

/**
 * BENCH_WARMUP_ROWS (default 0, off): before the timed run, each system (native peers too) first applies this
 * many changes of the same shape (new rows with ids from WARM_FROM, then an update of each), untimed, and the
 * timed run starts once they are at the destination. For measuring a warmed process: a fresh job's first
 * changes run while V8 still compiles the capture's and apply's code (docs/benchmarks.md, twenty-first round).
 * The figures the targets are read from are taken without it.
 */
const WARM_FROM = 50_000_000;

/** The pre-roll (see WARM_FROM), applied before the timed run; the rows it leaves at the destination. */
async function warmUp(w: Workload, src: { kind: Engine; port: number; db: string }, dst: Dest, timeoutMs: number): Promise<number> {
  const warm = Math.max(0, envInt('BENCH_WARMUP_ROWS', 0));
  const rows = Math.floor(warm / 2);
  if (rows === 0) return 0;
  const fill = src.kind === 'pg' ? fillPg : fillMaria;
  const ws: string[] = [];
  for (let f = 0; f < rows; f += w.txRows) {
    const a = WARM_FROM + f;
    const b = WARM_FROM + Math.min(rows, f + w.txRows) - 1;
    ws.push(fill(a, b));
    ws.push(`UPDATE items SET qty = qty + 1, note = 'w' WHERE id BETWEEN ${a} AND ${b}`);
  }
  await writeFromClient(src.kind, src.port, src.db, ws);
  await waitUntil(() => dst.counts(), (r) => r.n === w.base + rows, timeoutMs, 'warm-up applied', 20);
  return rows;
}

interface Timing {
  writeMs: number; totalMs: number; cpu: Record<string, number>; load: number; peakRssMiB: number;
  /** Rows of the untimed pre-roll (BENCH_WARMUP_ROWS), 0 without one. */
  warmRows: number;
  rowEvents?: { rows: number; failed: number };
  /** MariaDB source: row images the feed kept as binlog bytes, and rows it wrote as JSON. */
  feedImages?: { images: number; json: number };
}

/** Runs the workload from a client process and waits for the destination; timings in ms, CPU in s. */
async function timeStream(w: Workload, src: { kind: Engine; port: number; db: string }, dst: Dest, cpuParties: Record<string, () => number>, timeoutMs = 20 * 60_000): Promise<Timing> {
  const sql = statements(src.kind, w);
  const warmRows = await warmUp(w, src, dst, timeoutMs);
  await quietDown();
  const meter = cpuMeter(cpuParties);
  // Peak RSS of this process (Tributary's capture and apply run in it), sampled every 100 ms. memoryUsage.rss()
  // alone: process.memoryUsage() also walks V8's heap spaces, about 1 ms a call here, counted as Tributary's CPU.
  let peakRss = process.memoryUsage.rss();
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()); }, 100);
  const stopProfile = await profileWindow(`apply_${src.kind}_${dst.kind}_${w.txRows}_${Object.keys(cpuParties).join('_')}`);
  const t0 = performance.now();
  try {
    const writeMs = await writeFromClient(src.kind, src.port, src.db, sql);
    const expectRows = 2 * w.base + 1 + warmRows;
    await waitUntil(() => dst.probe(w.base), (n) => n === 3, timeoutMs, 'destination has the last rows', 5);
    const done = await waitUntil(() => dst.counts(), (r) => r.marker === 1 && r.n === expectRows && r.u === w.base, timeoutMs, 'destination caught up', 20);
    const timing = { writeMs, totalMs: done.at - t0, cpu: meter.stop(), load: loadAverage(), peakRssMiB: Math.round(peakRss / 2 ** 20), warmRows };
    await stopProfile();
    return timing;
  } finally {
    clearInterval(rssTimer);
  }
}

export async function run(): Promise<BenchResult[]> {
  const changes = Math.max(2_000, envInt('BENCH_APPLY_ROWS', 200_000));
  const txSizes = (process.env.BENCH_TX_ROWS ?? '1000,100').split(',').map((x) => Number(x)).filter((x) => Number.isInteger(x) && x > 0);
  const lanes = envInt('BENCH_LANES', 2);
  const known = ['pg:pg', 'maria:pg', 'pg:maria', 'maria:maria'];
  const only = (process.env.BENCH_APPLY_PATHS ?? known.join(',')).split(',').map((p) => p.trim()).filter(Boolean);
  const unknown = only.filter((p) => !known.includes(p));
  if (unknown.length > 0 || only.length === 0) throw new Error(`BENCH_APPLY_PATHS: ${unknown.join(', ') || '(empty)'} unknown; the paths are ${known.join(', ')}`);
  const servers: PrivateServer[] = [];
  let gw: BenchGateway | undefined;
  try {
    const [pgA, pgB, pgMeta, m1, m2, redis] = await Promise.all([
      startPostgres(), startPostgres(), startPostgres(), startMariadb({ serverId: 1 }), startMariadb({ serverId: 2 }), startRedis(),
    ]);
    servers.push(pgA, pgB, pgMeta, m1, m2, redis);
    gw = await startGateway(pgMeta, redis, 8);
    const out: BenchResult[] = [];
    for (const txRows of txSizes) {
      const w: Workload = { base: Math.floor(changes / 2 / txRows) * txRows, changes: 0, txRows };
      w.changes = 2 * w.base;
      out.push(...await runSize(w, lanes, only, { pgA, pgB, pgMeta, m1, m2, redis }, gw));
    }
    return out;
  } finally {
    await gw?.close().catch(() => undefined);
    for (const sv of servers.reverse()) await sv.stop().catch(() => undefined);
  }
}

interface Servers { pgA: PrivateServer; pgB: PrivateServer; pgMeta: PrivateServer; m1: PrivateServer; m2: PrivateServer; redis: PrivateServer }

/** Every path of `only`, and the natives they compare with, for one transaction size. */
async function runSize(w: Workload, lanes: number, only: string[], sv: Servers, gw: BenchGateway): Promise<BenchResult[]> {
  const { pgA, pgB, pgMeta, m1, m2, redis } = sv;
  const txRows = w.txRows;
  const sz = `_${txRows}`;
  const cpuOf = (s: PrivateServer) => () => processTreeCpuSeconds(s.pid());
  const nativeParties = (src: PrivateServer, dst: PrivateServer) => ({ bench: selfCpuSeconds, source: cpuOf(src), destination: cpuOf(dst) });

  const say = (what: string) => process.stderr.write(`apply bench: ${what}, ${w.changes} changes in ${txRows}-row transactions\n`);
  // --- native PostgreSQL logical replication A -> B
  say('native PostgreSQL logical replication');
  const nSrc = await createPgDb(pgA, `native_src${sz}`);
  const nDst = await createPgDb(pgB, `native_dst${sz}`);
  await nSrc.q(ITEMS_PG); await nSrc.q(fillPg(1, w.base));
  await nDst.q(ITEMS_PG);
  await nSrc.q(`CREATE PUBLICATION bench_pub${sz} FOR TABLE items`);
  await nDst.q(`CREATE SUBSCRIPTION bench_sub${sz} CONNECTION 'host=127.0.0.1 port=${pgA.port} dbname=${nSrc.name} user=postgres' PUBLICATION bench_pub${sz}`);
  await waitUntil(() => nDst.q<{ n: number }>(`SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'`), (r) => r[0]!.n === 0, 120_000, 'subscription sync', 100);
  await waitUntil(() => nDst.q<{ n: number }>('SELECT count(*)::int AS n FROM items'), (r) => r[0]!.n === w.base, 120_000, 'initial copy', 100);
  const nativePg = await timeStream(w, { kind: 'pg', port: pgA.port, db: nSrc.name }, pgDest(nDst, 'items'), nativeParties(pgA, pgB));
  await nDst.q(`DROP SUBSCRIPTION bench_sub${sz}`);
  await nSrc.close(); await nDst.close();

  // --- native MariaDB replica M1 -> M2 (file/position, one SQL thread)
  let nativeMaria: Timing | undefined;
  if (only.some((p) => p.endsWith(':maria'))) {
    say('native MariaDB replica');
    const rSrc = await createMariaDb(m1, `native_msrc${sz}`);
    await rSrc.q(ITEMS_MARIA); await rSrc.q(fillMaria(1, w.base));
    const rDst = await createMariaDb(m2, `native_msrc${sz}`);
    await rDst.q(ITEMS_MARIA); await rDst.q(fillMaria(1, w.base));
    // The replica's own binlog holds Tributary's writes of an earlier size (log-slave-updates, gtid strict mode):
    // the source's lower GTID sequence numbers would stop its SQL thread as out of order. Nothing reads M2's binlog.
    await rDst.q('RESET MASTER');
    const [status] = await rSrc.q<{ File: string; Position: number }>('SHOW MASTER STATUS');
    await rDst.q(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${m1.port}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_LOG_FILE='${status!.File}', MASTER_LOG_POS=${status!.Position}, MASTER_USE_GTID=no`);
    await rDst.q('START SLAVE');
    nativeMaria = await timeStream(w, { kind: 'maria', port: m1.port, db: rSrc.name }, mariaDest(rDst, 'items'), nativeParties(m1, m2));
    await rDst.q('STOP SLAVE'); await rDst.q('RESET SLAVE ALL');
    await rSrc.q(`DROP DATABASE ${rSrc.name}`);
    await rSrc.close(); await rDst.close();
  }

  const runJob = async (from: Engine, to: Engine): Promise<Timing> => {
    const tag = `${from}_${to}`;
    const src = from === 'pg' ? await createPgDb(pgA, `t_src_${tag}${sz}`) : await createMariaDb(m1, `t_src_${tag}${sz}`);
    const exec = (sql: string) => (src as { q(sql: string): Promise<unknown> }).q(sql);
    await exec(from === 'pg' ? ITEMS_PG : ITEMS_MARIA);
    await exec(from === 'pg' ? fillPg(1, w.base) : fillMaria(1, w.base));
    const schema = from === 'pg' ? 'public' : src.name;
    const dstDb = to === 'pg' ? await createPgDb(pgB, `t_dst_${tag}${sz}`) : await createMariaDb(m2, `t_dst_${tag}${sz}`);
    const dstTable = to === 'pg' ? `${schema}.items` : 'items';
    const dest = to === 'pg' ? pgDest(dstDb as PgDb, dstTable) : mariaDest(dstDb as MariaDb, dstTable);
    const srvSrc = from === 'pg' ? pgA : m1;
    const srvDst = to === 'pg' ? pgB : m2;
    const job = await createJob(gw.url, {
      name: `bench-apply-${tag}${sz}`, type: 'SYNCHRONOUS', parallelWorkers: lanes, tables: [{ schema }],
      source: endpoint(from === 'pg' ? 'POSTGRES' : 'MYSQL', srvSrc.port, src.name),
      destination: endpoint(to === 'pg' ? 'POSTGRES' : 'MYSQL', srvDst.port, dstDb.name),
      ...(to === 'maria' && from === 'pg' ? { rename: { schemas: { public: dstDb.name } } } : {}),
      ...(to === 'maria' && from === 'maria' ? { rename: { schemas: { [src.name]: dstDb.name } } } : {}),
    });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 300_000, 'snapshot done', 200);
    await waitUntil(() => dest.counts(), (r) => r.n === w.base, 120_000, 'snapshot rows', 100);
    // Let the capture and apply tasks start streaming (they poll for the end of the snapshot every 500 ms).
    await sleep(3000);
    const events0 = { ...binlogRowStats };
    const images0 = { ...feedImageStats };
    const t = await timeStream(w, { kind: from, port: srvSrc.port, db: src.name }, dest, {
      tributary: selfCpuSeconds, source: cpuOf(srvSrc), destination: cpuOf(srvDst), redis: cpuOf(redis), metadata: cpuOf(pgMeta),
    });
    if (from === 'maria') t.feedImages = { images: feedImageStats.images - images0.images, json: feedImageStats.declined - images0.declined };
    // MariaDB -> MariaDB: rows the apply sent as row events (the rest as SQL), and batches the server refused so.
    if (from === 'maria' && to === 'maria') {
      t.rowEvents = { rows: binlogRowStats.rows - events0.rows, failed: binlogRowStats.failed - events0.failed };
      if (t.rowEvents.failed > 0) say(`row events refused ${t.rowEvents.failed} time(s); last: ${binlogRowStats.lastError}`);
    }
    const j = await getJob(gw.url, job.id);
    if (j.status !== 'RUNNING') throw new Error(`job ${tag} is ${j.status}: ${j.error}`);
    await deleteJob(gw.url, job.id);
    await src.close(); await dstDb.close();
    return t;
  };

  const rate = (ms: number) => w.changes / (ms / 1000);
  const s = (ms: number) => +(ms / 1000).toFixed(2);
  const cpuText = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', ');
  const out: BenchResult[] = [];
  const names: Record<Engine, string> = { pg: 'PostgreSQL', maria: 'MariaDB' };
  for (const path of only) {
    const [from, to] = path.split(':') as [Engine, Engine];
    say(`Tributary ${from} -> ${to}`);
    const t = await runJob(from, to);
    const native = to === 'pg' ? nativePg : nativeMaria!;
    const peer = to === 'pg' ? 'native PG logical replication' : 'a native MariaDB replica';
    // Where the hardware limit is (docs/benchmarks.md): CPU per change of each side, and a model of the best ratio this run
    // allows. On 2 cores, a run takes at least the writer's time and at least all CPU spent over 2: with Tributary's own process
    // costing nothing, the servers' CPU for its statements (source, destination, Redis) would still bound it.
    const servers = (t.cpu.source ?? 0) + (t.cpu.destination ?? 0) + (t.cpu.redis ?? 0);
    const floorMs = Math.max(t.writeMs, (servers / 2) * 1000);
    const targetRatio = to === 'pg' && from === 'pg' ? 0.7 : to === 'maria' && from === 'maria' ? 0.5 : undefined;
    // The CPU Tributary's process may spend per change for the ratio target: 2 cores over the target's time, less the servers'.
    const budgetUs = targetRatio === undefined ? undefined : Math.max(0, (2 * (native.totalMs / targetRatio) / 1000 - servers) / w.changes * 1e6);
    out.push({
      name: `apply ${names[from]} -> ${names[to]}${txRows === 1000 ? '' : `, ${txRows}-row transactions`} (synchronous job vs ${peer})`,
      metrics: {
        rowChanges: w.changes, transactions: Math.ceil(w.changes / txRows), rowsPerTransaction: txRows, lanes,
        ...(t.warmRows > 0 ? { untimedWarmUpChangesBefore: 2 * t.warmRows } : {}),
        tributaryRowsPerSec: round(rate(t.totalMs)), tributarySeconds: s(t.totalMs), writerSeconds: s(t.writeMs),
        tributaryCatchUpAfterWritesSeconds: s(t.totalMs - t.writeMs), tributaryCpuSeconds: cpuText(t.cpu), tributaryPeakRssMiB: t.peakRssMiB, loadAverage: t.load,
        nativeRowsPerSec: round(rate(native.totalMs)), nativeSeconds: s(native.totalMs), nativeWriterSeconds: s(native.writeMs),
        nativeCatchUpAfterWritesSeconds: s(native.totalMs - native.writeMs), nativeCpuSeconds: cpuText(native.cpu), nativeLoadAverage: native.load,
        tributaryProcessCpuUsPerChange: round((t.cpu.tributary ?? 0) / w.changes * 1e6),
        serversCpuUsPerChangeForTributary: round(servers / w.changes * 1e6),
        nativeCpuUsPerChange: round(((native.cpu.source ?? 0) + (native.cpu.destination ?? 0)) / w.changes * 1e6),
        ceilingRatioIfTributaryProcessCostNothing: ratio3(native.totalMs / floorMs),
        ...(budgetUs === undefined ? {} : { tributaryProcessCpuBudgetUsPerChangeForTarget: round(budgetUs) }),
        ...(t.rowEvents ? { rowsSentAsRowEvents: t.rowEvents.rows, rowEventBatchesRefused: t.rowEvents.failed } : {}),
        ...(t.feedImages ? { feedRowImagesAsBinlogBytes: t.feedImages.images, feedChangesAsJson: t.feedImages.json } : {}),
      },
      ratio: { label: `Tributary ${names[from]}->${names[to]} rows/s / ${peer} rows/s`, value: ratio3(rate(t.totalMs) / rate(native.totalMs)) },
      target: to === 'pg' && from === 'pg' ? '>= 0.7x and >= 50k rows/s' : to === 'maria' && from === 'maria' ? '>= 0.5x' : '>= 50k rows/s',
      notes: t.load > 2 || native.load > 2 ? `Taken at load average ${t.load} (native ${native.load}), above 2: re-run on a quiet machine.` : undefined,
    });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => { console.log(JSON.stringify(r, null, 2)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
