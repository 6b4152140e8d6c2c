/**
 * A source writer at a steady rate, in its own process (bench/lag.bench.ts):
 * single-row INSERT transactions into `lagt (id, sent_at)`, `sent_at` set by
 * the source server to its clock (UTC, microseconds) when the row is written.
 *
 *   node bin/run-ts.js bench/support/steady-writer.ts pg|maria <url> <rows/s> <seconds>
 *
 * Four connections; every 5 ms the rows due by then are handed out to idle
 * connections, so a slow commit delays only its own connection. Prints
 * {"sent": n, "seconds": s, "tripP50Ms", "tripP99Ms"} when done (the
 * INSERTs' round trips: statement plus commit).
 */
import mysql from 'mysql2/promise';
import pg from 'pg';

const [kind, url, rateArg, secondsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const CONNECTIONS = 4;

type Exec = (id: number) => Promise<unknown>;

async function connect(): Promise<{ exec: Exec; close(): Promise<void> }> {
  if (kind === 'pg') {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return { exec: (id) => c.query(`INSERT INTO lagt (id, sent_at) VALUES ($1, clock_timestamp() AT TIME ZONE 'UTC')`, [id]), close: () => c.end() };
  }
  const c = await mysql.createConnection(url!);
  return { exec: (id) => c.query('INSERT INTO lagt (id, sent_at) VALUES (?, UTC_TIMESTAMP(6))', [id]), close: () => c.end() };
}

const conns = await Promise.all(Array.from({ length: CONNECTIONS }, connect));
const total = Math.round(rate * seconds);
let next = 1;
let sent = 0;
// Each INSERT's round trip (statement and commit, autocommit): the part of a row's latency before its commit.
const trips: number[] = [];
const t0 = performance.now();
await Promise.all(conns.map(async (c) => {
  for (;;) {
    if (next > total) return;
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    if (next > due) { await new Promise((r) => setTimeout(r, 5)); continue; }
    const id = next++;
    const ts = performance.now();
    await c.exec(id);
    trips.push(performance.now() - ts);
    sent++;
  }
}));
const elapsed = (performance.now() - t0) / 1000;
for (const c of conns) await c.close();
trips.sort((a, b) => a - b);
const at = (p: number) => +(trips[Math.min(trips.length - 1, Math.floor(p * trips.length))] ?? 0).toFixed(1);
process.stdout.write(JSON.stringify({ sent, seconds: +elapsed.toFixed(2), tripP50Ms: at(0.5), tripP99Ms: at(0.99) }) + '\n');
process.exit(0);
