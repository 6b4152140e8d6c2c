/**
 * The lag bench's peer: the same steady writer against the source engine's
 * own replication, timed the same way (bench/lag.bench.ts). PostgreSQL: a
 * publication and a subscription into a second private server, whose table
 * has the extra column `applied_at DEFAULT clock_timestamp()` (a subscriber
 * fills columns the publisher does not send with their defaults, per row, as
 * it applies them). MariaDB: a second private server as a replica (CHANGE
 * MASTER TO ... file/position, one SQL thread); its table has a trailing
 * `applied_at` that the source's rows lack (row-based replication allows
 * extra trailing columns on a replica), set by a BEFORE INSERT trigger with
 * SYSDATE(6) (the replica runs triggers for row events with
 * slave_run_triggers_for_rbr; SYSDATE is the clock now, where NOW() would
 * be the source's binlog second).
 */
import type { PrivateServer } from '../../src/devtools/private-servers.ts';
import { createMariaDb, createPgDb, loadAverage, processTreeCpuSeconds, cpuMeter, selfCpuSeconds, timeCommand, waitUntil } from './harness.ts';

export interface NativeLag {
  /** Every row's applied_at - sent_at in ms, ascending. */
  latencies: number[];
  /** The same without the rows of the first `warmSeconds`. */
  warm: number[];
  load: number;
  cpu: Record<string, number>;
  sent: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Seconds the writer warms up on a table nothing replicates before its timed run (steady-writer.ts). */
const WRITER_WARM_SECONDS = Number(process.env.BENCH_LAG_WRITER_WARM ?? 2);

/**
 * The steady writer (steady-writer.ts) against `url`: warmed up first, then `rate` single-row transactions a
 * second for `seconds`; `onTimed` runs when the timed run begins (start meters there).
 */
export async function runWriter(kind: 'pg' | 'maria', url: string, rate: number, seconds: number, onTimed: () => void | Promise<void>): Promise<{ sent: number; seconds: number; tripP50Ms: number; tripP99Ms: number }> {
  let timed: Promise<void> | undefined;
  const w = await timeCommand(process.execPath, ['bin/run-ts.js', 'bench/support/steady-writer.ts', kind, url, String(rate), String(seconds), String(WRITER_WARM_SECONDS)], {
    onOutput: (text) => { if (!timed && text.includes('writer: warm')) timed = Promise.resolve(onTimed()); },
  });
  await timed;
  if (w.code !== 0 || !timed) throw new Error(`writer failed: ${w.out}`);
  return JSON.parse(w.out.trim().split('\n').at(-1)!) as { sent: number; seconds: number; tripP50Ms: number; tripP99Ms: number };
}

export async function nativeLag(kind: 'pg' | 'maria', source: PrivateServer, replica: PrivateServer, rate: number, seconds: number, warmSeconds: number): Promise<NativeLag> {
  let m: { stop(): Record<string, number> } | undefined;
  const writer = (url: string) => runWriter(kind, url, rate, seconds, () => { m = meter(); });
  const meter = () => cpuMeter({ bench: selfCpuSeconds, source: () => processTreeCpuSeconds(source.pid()), destination: () => processTreeCpuSeconds(replica.pid()) });
  if (kind === 'pg') {
    const src = await createPgDb(source, 'lag_native_src');
    const dst = await createPgDb(replica, 'lag_native_dst');
    try {
      await src.q('CREATE TABLE lagt (id bigint PRIMARY KEY, sent_at timestamp(6))');
      await src.q(`ALTER DATABASE ${src.name} SET synchronous_commit = on`);
      await src.q('CREATE PUBLICATION lag_native_pub FOR TABLE lagt');
      await dst.q(`CREATE TABLE lagt (id bigint PRIMARY KEY, sent_at timestamp(6), applied_at timestamp(6) DEFAULT (clock_timestamp() AT TIME ZONE 'UTC'))`);
      await dst.q(`CREATE SUBSCRIPTION lag_native_sub CONNECTION 'host=127.0.0.1 port=${source.port} dbname=${src.name} user=postgres' PUBLICATION lag_native_pub`);
      await waitUntil(() => dst.q<{ n: number }>(`SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'`), (r) => r[0]!.n === 0, 120_000, 'subscription sync', 100);
      await sleep(3000);
      const { sent } = await writer(`postgres://postgres@127.0.0.1:${source.port}/${src.name}`);
      const load = loadAverage();
      await waitUntil(() => dst.q<{ n: number }>('SELECT count(*)::int AS n FROM lagt'), (r) => r[0]!.n === sent, 300_000, 'native: all rows applied', 100);
      const cpu = m!.stop();
      const ms = async (where: string) => (await dst.q<{ ms: number }>(`SELECT extract(epoch FROM applied_at - sent_at) * 1000 AS ms FROM lagt ${where}`)).map((r) => Number(r.ms)).sort((a, b) => a - b);
      const latencies = await ms('');
      const warm = await ms(`WHERE sent_at >= (SELECT min(sent_at) FROM lagt) + interval '${warmSeconds} seconds'`);
      await dst.q('DROP SUBSCRIPTION lag_native_sub');
      return { latencies, warm, load, cpu, sent };
    } finally {
      await src.close(); await dst.close();
    }
  }
  // MariaDB: the replica's database has the source's name (replication applies to the same schema).
  const src = await createMariaDb(source, 'lag_native');
  const dst = await createMariaDb(replica, 'lag_native');
  try {
    await src.q('CREATE TABLE lagt (id bigint PRIMARY KEY, sent_at datetime(6)) ENGINE=InnoDB');
    await dst.q('CREATE TABLE lagt (id bigint PRIMARY KEY, sent_at datetime(6), applied_at datetime(6) NULL) ENGINE=InnoDB');
    await dst.q('CREATE TRIGGER lagt_applied BEFORE INSERT ON lagt FOR EACH ROW SET NEW.applied_at = SYSDATE(6)');
    // sent_at is UTC_TIMESTAMP(6); SYSDATE(6) is the server's local time: compare in UTC.
    const [tz] = await dst.q<{ off: number }>('SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS off');
    await dst.q('SET GLOBAL slave_run_triggers_for_rbr = YES');
    await dst.q('RESET MASTER');
    const [status] = await src.q<{ File: string; Position: number }>('SHOW MASTER STATUS');
    await dst.q(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${source.port}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_LOG_FILE='${status!.File}', MASTER_LOG_POS=${status!.Position}, MASTER_USE_GTID=no`);
    await dst.q('START SLAVE');
    await sleep(3000);
    const { sent } = await writer(`mysql://root@127.0.0.1:${source.port}/${src.name}`);
    const load = loadAverage();
    await waitUntil(() => dst.q<{ n: number }>('SELECT count(*) AS n FROM lagt'), (r) => Number(r[0]!.n) === sent, 300_000, 'native: all rows applied', 100);
    const cpu = m!.stop();
    const off = Number(tz!.off);
    const ms = async (where: string) => (await dst.q<{ ms: string }>(`SELECT TIMESTAMPDIFF(MICROSECOND, sent_at, applied_at - INTERVAL ${off} SECOND) / 1000 AS ms FROM lagt ${where}`)).map((r) => Number(r.ms)).sort((a, b) => a - b);
    const latencies = await ms('');
    const warm = await ms(`WHERE sent_at >= (SELECT min(sent_at) FROM lagt) + INTERVAL ${warmSeconds} SECOND`);
    await dst.q('STOP SLAVE'); await dst.q('RESET SLAVE ALL');
    return { latencies, warm, load, cpu, sent };
  } finally {
    await src.close(); await dst.close();
  }
}
