/**
 * The changefeed latency benchmark's peer (issue 4): PostGraphile 4 live
 * queries (`live: true`, `subscriptions: true`, @graphile/subscriptions-lds),
 * measured the same way as Tributary's latency phase in
 * bench/changefeed.bench.ts, on the same private PostgreSQL.
 *
 *   - PostGraphile runs in a child process (bench/peers/postgraphile/server.cjs),
 *     so its CPU is its own as in a deployment. It is a package of its own
 *     (PostGraphile 4 needs graphql 15; the gateway uses graphql 16), installed
 *     here with `npm ci` on first use from its pinned package-lock.json.
 *   - It gets a fresh database (`cfpeer`) with the same `ev` table plus an index
 *     on `_change_selector` (each live update re-runs the subscriber's query
 *     with that condition), so Tributary's capture of its own database is idle.
 *   - LDS reads changes through a temporary `wal2json` slot: the Debian package
 *     postgresql-15-wal2json. PostgreSQL 15.19+ also requires the output plugin
 *     to be listed in `output_plugin_libraries` (superuser-settable), which this
 *     sets for the peer's database only. Without wal2json the peer is reported
 *     as not measured, with the reason.
 *   - Clients: N graphql-ws clients in this process (PostGraphile 4.14 serves
 *     graphql-ws as well as subscriptions-transport-ws), each a live query
 *     `allEvs(condition: {_changeSelector: "t<i>"})`; the writer commits `rate`
 *     rows/s in 10-row transactions every 10 ms, each row carrying its send time
 *     in `sent`. A live query re-sends its whole result set: only the rows newly
 *     seen by a subscriber count, latency = receipt - sent.
 * Alone: `node bin/run-ts.js bench/support/postgraphile-peer.ts` (own private
 * PostgreSQL; PEER_SUBSCRIBERS, PEER_RATE, PEER_SECONDS override the sizes).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { PrivateServer } from '../../src/devtools/private-servers.ts';
import { createPgDb, envInt, sleep, type PgDb } from './harness.ts';

export const PEER_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../peers/postgraphile');

export interface PeerOptions { subscribers: number; rate: number; seconds: number; log?: (m: string) => void; database?: string }

export type PeerResult =
  | { measured: true; p50: number; p99: number; max: number; received: number; total: number; rate: number; updates: number; serverCpuSeconds: number; versions: string; settings: string }
  | { measured: false; reason: string };

const now = () => performance.timeOrigin + performance.now();
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

const LIVE = `subscription($s: String!) { allEvs(condition: { _changeSelector: $s }) { nodes { id sent } } }`;

/** Installs the peer's own package from its lock file when it is missing; returns why it could not, or undefined. */
function ensureInstalled(log: (m: string) => void): string | undefined {
  const marker = path.join(PEER_DIR, 'node_modules', 'postgraphile', 'package.json');
  if (existsSync(marker)) return undefined;
  log(`installing the PostGraphile peer's packages (npm ci in ${path.relative(process.cwd(), PEER_DIR) || PEER_DIR}) ...`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: PEER_DIR, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0 || !existsSync(marker)) return `npm ci in bench/peers/postgraphile failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr || r.stdout || '').trim().slice(-400)}`;
  return undefined;
}

function versions(): string {
  const v = (p: string) => { try { return (JSON.parse(readFileSync(path.join(PEER_DIR, 'node_modules', p, 'package.json'), 'utf8')) as { version: string }).version; } catch { return '?'; } };
  return `postgraphile ${v('postgraphile')}, @graphile/subscriptions-lds ${v('@graphile/subscriptions-lds')}, graphql ${v('graphql')}`;
}

/**
 * Lets the peer's database use wal2json (PostgreSQL 15.19+ only allows the
 * output plugins named in `output_plugin_libraries`), then checks that a wal2json
 * slot can be created there. Returns why the peer cannot run, or undefined.
 */
async function prepareWal2json(db: PgDb): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const allowed = await c.query<{ setting: string }>(`SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'`);
    if (allowed.rows.length) {
      const list = allowed.rows[0]!.setting.split(',').map((s) => s.trim().replace(/^"|"$/g, '')).filter(Boolean);
      if (!list.includes('wal2json')) list.push('wal2json');
      await c.query(`ALTER DATABASE ${db.name} SET output_plugin_libraries = ${list.map((s) => `'${s.replace(/'/g, "''")}'`).join(', ')}`);
    }
  } finally { await c.end(); }
  const probe = new pg.Client({ connectionString: db.url }); // a new session: it reads the database's setting
  await probe.connect();
  try {
    await probe.query(`SELECT pg_create_logical_replication_slot('peer_wal2json_probe', 'wal2json', true)`);
    return undefined;
  } catch (err) {
    return `PostGraphile live queries (@graphile/subscriptions-lds) read changes through the wal2json logical decoding plugin, and this PostgreSQL cannot load it (creating a wal2json slot failed: "${(err as Error).message}"); on Debian install postgresql-15-wal2json (for the PostgreSQL major version in use).`;
  } finally { await probe.end(); } // the slot is temporary: it goes with the session
}

interface PeerServer { child: ChildProcess; port: number; stderr: () => string; stop(): Promise<void> }

async function startPeerServer(dbUrl: string): Promise<PeerServer> {
  const child = spawn(process.execPath, [path.join(PEER_DIR, 'server.cjs'), dbUrl], { cwd: PEER_DIR, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => { err = (err + d).slice(-4000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`PostGraphile did not start in 120 s: ${err.trim().slice(-600)}`)), 120_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`PostGraphile exited (${code}) before it was ready: ${err.trim().slice(-600)}`)); });
  });
  return {
    child, port, stderr: () => err,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc (NaN where there is none). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100 Hz on Linux)
  } catch { return NaN; }
}

async function measure(srv: PeerServer, db: PgDb, o: PeerOptions) {
  const cs: Client[] = Array.from({ length: o.subscribers }, () => createClient({ url: `ws://127.0.0.1:${srv.port}/graphql`, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 }));
  const samples: number[] = [];
  let received = 0; let ready = 0; let updates = 0; let errors = 0; let lastError = '';
  const stops = cs.map((c, i) => {
    const seen = new Set<string>();
    let first = true;
    return c.subscribe<{ allEvs: { nodes: { id: string; sent: number }[] } }>({ query: LIVE, variables: { s: `t${i}` } }, {
      next: (m) => {
        const t = now();
        if (m.errors?.length) { errors++; lastError = m.errors[0]!.message; }
        if (first) { first = false; ready++; }
        else updates++;
        for (const n of m.data?.allEvs.nodes ?? []) {
          if (seen.has(n.id)) continue;
          seen.add(n.id);
          samples.push(t - Number(n.sent));
          received++;
        }
      },
      error: (e) => { errors++; lastError = e instanceof Error ? e.message : JSON.stringify(e); },
      complete: () => undefined,
    });
  });
  try {
    // Every live query has sent its first (empty) result: the subscriptions are in place.
    const readyBy = Date.now() + 120_000;
    while (ready < o.subscribers) {
      if (Date.now() > readyBy || errors >= o.subscribers) throw new Error(`only ${ready} of ${o.subscribers} live queries answered (${errors} errors${lastError ? `, last: ${lastError}` : ''})`);
      await sleep(50);
    }
    if (samples.length) throw new Error('the peer table was not empty');
    const total = o.rate * o.seconds;
    const perTx = 10;
    const cpu0 = cpuSeconds(srv.child.pid);
    const t0 = now();
    let id = 0;
    for (let tick = 0; id < total; tick++) {
      const due = t0 + tick * (1000 * perTx) / o.rate;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      const rows: string[] = [];
      const sent = now();
      for (let k = 0; k < perTx && id < total; k++, id++) rows.push(`(${id}, ${sent}, 't${id % o.subscribers}')`);
      await db.q(`SET synchronous_commit = on; INSERT INTO ev (id, sent, _change_selector) VALUES ${rows.join(',')}`);
    }
    const writeSeconds = (now() - t0) / 1000;
    const deadline = Date.now() + 60_000;
    while (received < total && Date.now() < deadline) await sleep(50);
    const serverCpuSeconds = cpuSeconds(srv.child.pid) - cpu0;
    if (errors) o.log?.(`peer: ${errors} subscription errors, last: ${lastError}`);
    samples.sort((a, b) => a - b);
    return { p50: pct(samples, 0.5), p99: pct(samples, 0.99), max: samples.at(-1) ?? NaN, received, total, rate: total / writeSeconds, updates, serverCpuSeconds };
  } finally {
    for (const s of stops) s();
    await Promise.all(cs.map((c) => c.dispose()));
  }
}

/**
 * Runs the peer on `server` (a private PostgreSQL with wal_level=logical, superuser access).
 * Never throws: a peer that cannot run or finish comes back as `measured: false` with the reason.
 */
export async function postgraphilePeer(server: PrivateServer, o: PeerOptions): Promise<PeerResult> {
  const log = o.log ?? (() => undefined);
  let db: PgDb | undefined; let srv: PeerServer | undefined;
  try {
    const notInstalled = ensureInstalled(log);
    if (notInstalled) return { measured: false, reason: notInstalled };
    db = await createPgDb(server, o.database ?? 'cfpeer');
    await db.q(`CREATE TABLE ev (id bigint PRIMARY KEY, sent double precision, _change_selector text)`);
    await db.q(`CREATE INDEX ev_change_selector ON ev (_change_selector)`);
    const noWal2json = await prepareWal2json(db);
    if (noWal2json) return { measured: false, reason: noWal2json };
    srv = await startPeerServer(db.url);
    log(`peer: PostGraphile (${versions()}) on port ${srv.port}; ${o.subscribers} live queries ...`);
    const r = await measure(srv, db, o);
    const env = (k: string, d: string) => process.env[k] ? `${k}=${process.env[k]}` : `${k} default (${d})`;
    return { measured: true, ...r, versions: versions(), settings: `${env('LD_WAIT', '200 ms LDS poll')}, ${env('LIVE_THROTTLE', '500 ms')}` };
  } catch (err) {
    const tail = srv?.stderr().trim().slice(-400);
    return { measured: false, reason: `the PostGraphile peer did not finish: ${(err as Error).message}${tail ? ` (server stderr: ${tail})` : ''}` };
  } finally {
    await srv?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startPostgres } = await import('../../src/devtools/private-servers.ts');
  const pgs = await startPostgres();
  try {
    // startPostgres returns once the port is open, which can be before PostgreSQL accepts sessions (57P03).
    for (let i = 0; ; i++) {
      const c = new pg.Client({ connectionString: pgs.url });
      try { await c.connect(); await c.query('SELECT 1'); break; } catch (err) { if (i >= 100) throw err; await sleep(100); } finally { await c.end().catch(() => undefined); }
    }
    const r = await postgraphilePeer(pgs, {
      subscribers: envInt('PEER_SUBSCRIBERS', 1000), rate: envInt('PEER_RATE', 1000), seconds: envInt('PEER_SECONDS', 10),
      log: (m) => process.stderr.write(`${m}\n`),
    });
    console.log(JSON.stringify(r, null, 2));
  } finally { await pgs.stop(); }
  process.exit(0);
}
