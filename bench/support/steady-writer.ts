/**
 * A source writer at a steady rate, in its own process (bench/lag.bench.ts):
 * single-row INSERT transactions into `lagt (id, sent_at)`, `sent_at` set by
 * the source server to its clock (UTC, microseconds) when the row is written.
 *
 *   node bin/run-ts.js bench/support/steady-writer.ts pg|maria <url> <rows/s> <seconds> [<warm seconds>]
 *
 * With warm seconds, the same loop first runs that long at the same rate
 * against `lag_warm.lagt` on the same server, where nothing replicates it
 * (PostgreSQL: an UNLOGGED table, which writes no WAL; MariaDB: sessions with
 * sql_log_bin=0, which write no binlog), then the timed run starts on fresh
 * connections, and `writer: warm` goes to stderr. Why: a writer process
 * starting cold spent up to 1.4 cores compiling and optimising its own code
 * in its first second of writing, beside the replication it was meant to
 * load (issue 12, lag bench); an application's writers are warm.
 *
 * Four connections; every 5 ms the rows due by then are handed out to idle
 * connections, so a slow commit delays only its own connection. Prints
 * {"sent": n, "seconds": s, "tripP50Ms", "tripP99Ms"} when done (the
 * INSERTs' round trips: statement plus commit).
 */
import mysql from 'mysql2/promise';
import pg from 'pg';

const [kind, url, rateArg, secondsArg, warmSecondsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const CONNECTIONS = 4;

type Exec = (id: number) => Promise<unknown>;

async function connect(to = url!, warm = false): Promise<{ exec: Exec; close(): Promise<void> }> {
  if (kind === 'pg') {
    const c = new pg.Client({ connectionString: to });
    await c.connect();
    return { exec: (id) => c.query(`INSERT INTO lagt (id, sent_at) VALUES ($1, clock_timestamp() AT TIME ZONE 'UTC')`, [id]), close: () => c.end() };
  }
  const c = await mysql.createConnection(to);
  if (warm) await c.query('SET SESSION sql_log_bin = 0');
  return { exec: (id) => c.query('INSERT INTO lagt (id, sent_at) VALUES (?, UTC_TIMESTAMP(6))', [id]), close: () => c.end() };
}

/** Writes `total` rows at `rate` a second over `conns`, ids from `firstId`; returns each INSERT's round trip, ms. */
async function write(conns: { exec: Exec }[], total: number, firstId: number): Promise<number[]> {
  let next = 0;
  // Each INSERT's round trip (statement and commit, autocommit): the part of a row's latency before its commit.
  const trips: number[] = [];
  const t0 = performance.now();
  await Promise.all(conns.map(async (c) => {
    for (;;) {
      if (next >= total) return;
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      if (next >= due) { await new Promise((r) => setTimeout(r, 5)); continue; }
      const id = firstId + next++;
      const ts = performance.now();
      await c.exec(id);
      trips.push(performance.now() - ts);
    }
  }));
  return trips;
}

/** `lag_warm.lagt` made on the source server, nothing of it replicated; its URL. */
async function warmTable(): Promise<string> {
  const at = new URL(url!);
  const warmUrl = new URL(url!);
  warmUrl.pathname = '/lag_warm';
  if (kind === 'pg') {
    at.pathname = '/postgres';
    const admin = new pg.Client({ connectionString: at.href });
    await admin.connect();
    await admin.query('CREATE DATABASE lag_warm').catch((err: { code?: string }) => { if (err.code !== '42P04') throw err; });
    await admin.end();
    const c = new pg.Client({ connectionString: warmUrl.href });
    await c.connect();
    await c.query('DROP TABLE IF EXISTS lagt');
    await c.query('CREATE UNLOGGED TABLE lagt (id bigint PRIMARY KEY, sent_at timestamp(6))');
    await c.end();
  } else {
    at.pathname = '/';
    const c = await mysql.createConnection(at.href);
    await c.query('SET SESSION sql_log_bin = 0');
    await c.query('CREATE DATABASE IF NOT EXISTS lag_warm');
    await c.query('DROP TABLE IF EXISTS lag_warm.lagt');
    await c.query('CREATE TABLE lag_warm.lagt (id bigint PRIMARY KEY, sent_at datetime(6)) ENGINE=InnoDB');
    await c.end();
  }
  return warmUrl.href;
}

const warmSeconds = Number(warmSecondsArg ?? 0);
if (warmSeconds > 0) {
  const warmUrl = await warmTable();
  const warm = await Promise.all(Array.from({ length: CONNECTIONS }, () => connect(warmUrl, true)));
  await write(warm, Math.round(rate * warmSeconds), 1);
  for (const c of warm) await c.close();
}
// The timed run begins (the bench starts its meters here).
process.stderr.write('writer: warm\n');
const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => connect()));
const total = Math.round(rate * seconds);
const t0 = performance.now();
const trips = await write(conns, total, 1);
const sent = trips.length;
const elapsed = (performance.now() - t0) / 1000;
for (const c of conns) await c.close();
trips.sort((a, b) => a - b);
const at = (p: number) => +(trips[Math.min(trips.length - 1, Math.floor(p * trips.length))] ?? 0).toFixed(1);
process.stdout.write(JSON.stringify({ sent, seconds: +elapsed.toFixed(2), tripP50Ms: at(0.5), tripP99Ms: at(0.99) }) + '\n');
process.exit(0);
