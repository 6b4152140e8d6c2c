/**
 * Lag under steady load (issue 12, target 4): a writer in its own process
 * (bench/support/steady-writer.ts) makes BENCH_LAG_RATE (default 5,000)
 * single-row INSERT transactions a second for BENCH_LAG_SECONDS (default 60)
 * on each source of BENCH_LAG_SOURCES (default pg,maria)
 * on each source engine, while a SYNCHRONOUS job streams them into
 * PostgreSQL.
 *
 * Latency of every row, measured on the servers' own clock (all servers run
 * on this machine, so they share it): the source stamps `sent_at` when it
 * writes the row (PostgreSQL `clock_timestamp()`, MariaDB `UTC_TIMESTAMP(6)`,
 * microseconds), and the destination table, created before the job with an
 * extra column `applied_at DEFAULT clock_timestamp()`, stamps each row when
 * the applier inserts it (Tributary names its columns, so the default
 * fills). MariaDB's binlog commit time has one-second resolution, so it is
 * not used here; `applied_at - sent_at` is precise to microseconds for both
 * engines. Reported: p50, p99 and max over every row, against the target
 * (and p50 and p99 of the rows after the first 5 seconds, apart: the tail of
 * a run is mostly its start, where load steps from nothing to full rate),
 * p99 <= 200 ms (the ceiling of this bench: the ratio is target / p99), and
 * the job's own `metrics.lagMs` sampled every 250 ms, to compare (target:
 * within 50 ms). Two comparisons: the lagMs samples' p50 and p99 against the
 * rows' (different populations: samples in time, rows by count), and paired,
 * each sample against the mean latency of the rows the destination applied
 * in the 250 ms before it (lagMs is the mean lag of the last applied batch,
 * written every 250 ms).
 * `agreesWithin50Ms` is yes when both percentile differences are within 50 ms.
 * A row's latency starts when its INSERT runs, lagMs at its commit: the
 * writer's round trips (statement plus commit, `writerRoundTrip*`) bound
 * that part of the gap.
 *
 * Peer (BENCH_LAG_NATIVE=0 leaves it out): just before each Tributary run,
 * the same writer against the source engine's own replication, timed the
 * same way: a PostgreSQL subscription, a MariaDB replica
 * (bench/support/lag-native.ts). Its p50/p99 and Tributary's p99 over it
 * (`p99OverNativeP99`) are reported beside the target.
 *
 * The writer warms up first (BENCH_LAG_WRITER_WARM seconds, default 2, at the
 * same rate, on a table on the source server that nothing replicates) and the
 * timed minute, the meters and the profile start after it: a cold writer
 * process spent up to 1.4 cores on its own start in its first second.
 *
 * Run alone: `node bin/run-ts.js bench/lag.bench.ts`.
 */
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from '../src/devtools/private-servers.ts';
import {
  cpuMeter, createJob, profileWindow, createMariaDb, createPgDb, deleteJob, endpoint, envInt, getJob, loadAverage, processTreeCpuSeconds, ratio3,
  quietDown, selfCpuSeconds, startGateway, waitJob, waitUntil, type BenchGateway, type BenchResult, type PgDb,
} from './support/harness.ts';
import { nativeLag, runWriter, type NativeLag } from './support/lag-native.ts';

export type { BenchResult };

const TARGET_P99_MS = 200;
/** Rows of the run's first seconds left out of the second pair of percentiles (the start of the load, see below). */
const WARM_SECONDS = 5;

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export async function run(): Promise<BenchResult[]> {
  const rate = envInt('BENCH_LAG_RATE', 5000);
  const seconds = envInt('BENCH_LAG_SECONDS', 60);
  const servers: PrivateServer[] = [];
  let gw: BenchGateway | undefined;
  const out: BenchResult[] = [];
  try {
    const sources = (process.env.BENCH_LAG_SOURCES ?? 'pg,maria').split(',').filter((k): k is 'pg' | 'maria' => k === 'pg' || k === 'maria');
    // BENCH_LAG_NATIVE=0 leaves out the peer runs (the source engine's own replication, bench/support/lag-native.ts).
    const withNative = process.env.BENCH_LAG_NATIVE !== '0';
    const [pgA, pgB, pgMeta, maria, redis, replica] = await Promise.all([startPostgres(), startPostgres(), startPostgres(), startMariadb({ serverId: 1 }), startRedis(),
      withNative && sources.includes('maria') ? startMariadb({ serverId: 2 }) : Promise.resolve(undefined)]);
    servers.push(pgA, pgB, pgMeta, maria, redis, ...(replica ? [replica] : []));
    gw = await startGateway(pgMeta, redis, 8);
    for (const kind of sources) {
      let native: NativeLag | undefined;
      if (withNative) {
        await quietDown();
        process.stderr.write(`lag bench: ${kind} native replication, ${rate} single-row transactions/s for ${seconds} s\n`);
        native = await nativeLag(kind, kind === 'pg' ? pgA : maria, kind === 'pg' ? pgB : replica!, rate, seconds, WARM_SECONDS);
      }
      await quietDown();
      process.stderr.write(`lag bench: ${kind} Tributary, ${rate} single-row transactions/s for ${seconds} s\n`);
      const src = kind === 'pg' ? await createPgDb(pgA, 'lag_src') : await createMariaDb(maria, 'lag_src');
      const exec = (sql: string) => (src as { q(sql: string): Promise<unknown> }).q(sql);
      await exec(kind === 'pg' ? 'CREATE TABLE lagt (id bigint PRIMARY KEY, sent_at timestamp(6))' : 'CREATE TABLE lagt (id bigint PRIMARY KEY, sent_at datetime(6)) ENGINE=InnoDB');
      // The private servers run synchronous_commit=off: logical decoding then sees a commit only after the
      // WAL writer's next flush (wal_writer_delay, 200 ms). Production's default is on.
      if (kind === 'pg') await exec(`ALTER DATABASE ${src.name} SET synchronous_commit = on`);
      const schema = kind === 'pg' ? 'public' : src.name;
      const dst: PgDb = await createPgDb(pgB, `lag_dst_${kind}`);
      await dst.q(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await dst.q(`CREATE TABLE ${schema}.lagt (id bigint PRIMARY KEY, sent_at timestamp(6), applied_at timestamp(6) DEFAULT (clock_timestamp() AT TIME ZONE 'UTC'))`);
      const srv = kind === 'pg' ? pgA : maria;
      const job = await createJob(gw.url, {
        name: `bench-lag-${kind}`, type: 'SYNCHRONOUS', parallelWorkers: 2, tables: [{ schema }],
        source: endpoint(kind === 'pg' ? 'POSTGRES' : 'MYSQL', srv.port, src.name), destination: endpoint('POSTGRES', pgB.port, dst.name),
      });
      await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 120_000, 'streaming', 200);
      await new Promise((r) => setTimeout(r, 3000));
      const lagSamples: number[] = [];
      const pairedDiffs: number[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const [j, newest] = await Promise.all([
            getJob(gw!.url, job.id).catch(() => undefined),
            // The rows applied in the last 250 ms (the newest 5,000 ids at most: a range of the primary key).
            dst.q<{ ms: number | null }>(`SELECT avg(extract(epoch FROM applied_at - sent_at) * 1000) AS ms FROM ${schema}.lagt
              WHERE id > (SELECT coalesce(max(id), 0) - 5000 FROM ${schema}.lagt) AND applied_at > (clock_timestamp() AT TIME ZONE 'UTC') - interval '250 ms'`).catch(() => []),
          ]);
          if (j?.metrics.lagMs !== null && j?.metrics.lagMs !== undefined) {
            lagSamples.push(j.metrics.lagMs);
            // Idle (lagMs 0 once the feed is drained) or nothing applied yet: no pair.
            if (newest[0]?.ms != null && j.metrics.lagMs > 0) pairedDiffs.push(Math.abs(j.metrics.lagMs - Number(newest[0].ms)));
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      const url = kind === 'pg' ? `postgres://postgres@127.0.0.1:${pgA.port}/${src.name}` : `mysql://root@127.0.0.1:${maria.port}/${src.name}`;
      // Meters and (BENCH_CPU_PROF / BENCH_GC) a profile of this process (Tributary's capture and apply) from the timed run's start.
      let meter: { stop(): Record<string, number> } | undefined;
      let stopProfile: (() => Promise<void>) | undefined;
      const written = await runWriter(kind, url, rate, seconds, async () => {
        meter = cpuMeter({ tributary: selfCpuSeconds, source: () => processTreeCpuSeconds(srv.pid()), destination: () => processTreeCpuSeconds(pgB.pid()), redis: () => processTreeCpuSeconds(redis.pid()) });
        stopProfile = await profileWindow(`lag_${kind}`);
      });
      await stopProfile?.();
      const load = loadAverage();
      await waitUntil(() => dst.q<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.lagt`), (r) => r[0]!.n === written.sent, 300_000, 'all rows applied', 100);
      sampling = false;
      await sampler;
      const cpu = meter!.stop();
      const lat = (await dst.q<{ ms: number }>(`SELECT extract(epoch FROM applied_at - sent_at) * 1000 AS ms FROM ${schema}.lagt`)).map((r) => Number(r.ms)).sort((a, b) => a - b);
      // The same without the rows of the first WARM_SECONDS: the step from idle to full rate meets a process whose
      // code has not run yet (interpreted, not optimised) and the first use of each connection and relation.
      const warm = (await dst.q<{ ms: number }>(`SELECT extract(epoch FROM applied_at - sent_at) * 1000 AS ms FROM ${schema}.lagt
        WHERE sent_at >= (SELECT min(sent_at) FROM ${schema}.lagt) + interval '${WARM_SECONDS} seconds'`)).map((r) => Number(r.ms)).sort((a, b) => a - b);
      // Where the tail is: the rows' p99 and max per second of the run (BENCH_LAG_TIMELINE=file writes them).
      if (process.env.BENCH_LAG_TIMELINE) {
        const bySecond = await dst.q<{ s: number; n: number; p50: number; p99: number; max: number }>(`
          WITH r AS (SELECT extract(epoch FROM sent_at - (SELECT min(sent_at) FROM ${schema}.lagt))::int AS s, extract(epoch FROM applied_at - sent_at) * 1000 AS ms FROM ${schema}.lagt)
          SELECT s, count(*)::int AS n, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)::float AS p50,
                 round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)::float AS p99, round(max(ms)::numeric, 1)::float AS max FROM r GROUP BY s ORDER BY s`);
        appendFileSync(process.env.BENCH_LAG_TIMELINE, `${kind} at ${new Date().toISOString()}\n` + bySecond.map((b) => `${b.s}\t${b.n}\t${b.p50}\t${b.p99}\t${b.max}`).join('\n') + '\n');
      }
      const jobLag = [...lagSamples].sort((a, b) => a - b);
      const j = await getJob(gw.url, job.id);
      if (j.status !== 'RUNNING') throw new Error(`job is ${j.status}: ${j.error}`);
      await deleteJob(gw.url, job.id);
      await (src as { close(): Promise<void> }).close(); await dst.close();
      const name = kind === 'pg' ? 'PostgreSQL' : 'MariaDB';
      const p99 = pct(lat, 0.99);
      const diffP50 = pct(jobLag, 0.5) - pct(lat, 0.5);
      const diffP99 = pct(jobLag, 0.99) - p99;
      const paired = pairedDiffs.sort((a, b) => a - b);
      out.push({
        name: `lag under steady load: ${name} -> PostgreSQL, ${rate} single-row transactions/s`,
        metrics: {
          rowsWritten: written.sent, writerSeconds: written.seconds, achievedRatePerSec: Math.round(written.sent / written.seconds),
          latencyP50Ms: +pct(lat, 0.5).toFixed(1), latencyP99Ms: +p99.toFixed(1), latencyMaxMs: +lat.at(-1)!.toFixed(1),
          [`latencyAfterFirst${WARM_SECONDS}sP50Ms`]: +pct(warm, 0.5).toFixed(1), [`latencyAfterFirst${WARM_SECONDS}sP99Ms`]: +pct(warm, 0.99).toFixed(1),
          jobLagMsP50: pct(jobLag, 0.5), jobLagMsP99: pct(jobLag, 0.99), jobLagSamples: jobLag.length,
          jobLagMinusLatencyP50Ms: +diffP50.toFixed(1), jobLagMinusLatencyP99Ms: +diffP99.toFixed(1),
          pairedAbsDiffP50Ms: +pct(paired, 0.5).toFixed(1), pairedAbsDiffP99Ms: +pct(paired, 0.99).toFixed(1), pairedSamples: paired.length,
          // Row latency starts at the INSERT, lagMs at its commit: the writer's round trip bounds the gap.
          writerRoundTripP50Ms: written.tripP50Ms, writerRoundTripP99Ms: written.tripP99Ms,
          agreesWithin50Ms: Math.abs(diffP50) <= 50 && Math.abs(diffP99) <= 50 ? 'yes' : 'no',
          cpuSeconds: Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(', '), loadAverage: load,
          ...(native ? {
            nativePeer: kind === 'pg' ? 'PostgreSQL logical replication (subscription) into PostgreSQL' : 'a MariaDB replica (one SQL thread)',
            nativeLatencyP50Ms: +pct(native.latencies, 0.5).toFixed(1), nativeLatencyP99Ms: +pct(native.latencies, 0.99).toFixed(1),
            nativeLatencyMaxMs: +native.latencies.at(-1)!.toFixed(1),
            [`nativeLatencyAfterFirst${WARM_SECONDS}sP99Ms`]: +pct(native.warm, 0.99).toFixed(1),
            p99OverNativeP99: +(p99 / pct(native.latencies, 0.99)).toFixed(2),
            nativeCpuSeconds: Object.entries(native.cpu).map(([k, v]) => `${k} ${v}`).join(', '), nativeLoadAverage: native.load,
          } : {}),
        },
        ratio: { label: `target p99 ${TARGET_P99_MS} ms / measured p99 (>= 1 meets it)`, value: ratio3(TARGET_P99_MS / p99) },
        target: `p99 <= ${TARGET_P99_MS} ms; job lagMs within 50 ms of it`,
        notes: [
          kind === 'maria' ? "A MariaDB job's lagMs is measured from a precise commit estimate (binlog end sampled every 50 ms, the capture's receipt of the commit, within the binlog's second), not from the binlog's whole-second stamp (docs/architecture.md, Lag)." : '',
          load > 2 ? `Taken at load average ${load}, above 2: re-run on a quiet machine.` : '',
          native ? `Peer: the same writer against ${kind === 'pg' ? 'a PostgreSQL subscription' : 'a MariaDB replica'} on this machine just before, timed the same way (bench/support/lag-native.ts): p99 ${pct(native.latencies, 0.99).toFixed(1)} ms at load ${native.load}.` : '',
        ].filter(Boolean).join(' ') || undefined,
      });
    }
    return out;
  } finally {
    await gw?.close().catch(() => undefined);
    for (const sv of servers.reverse()) await sv.stop().catch(() => undefined);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => { console.log(JSON.stringify(r, null, 2)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
