/**
 * Shared plumbing for the replication benchmarks (snapshot, capture, apply):
 * an in-process Tributary App (gateway + workers) on private servers, GraphQL
 * helpers, MariaDB/PostgreSQL database handles, and small timing helpers.
 * Not a benchmark itself (the runner only picks up *.bench.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { App } from '../../src/app.ts';
import type { PrivateServer } from '../../src/devtools/private-servers.ts';

export interface BenchResult {
  name: string;
  metrics: Record<string, number | string>;
  ratio?: { label: string; value: number };
  target?: string;
  notes?: string;
}

export const round = (x: number): number => Math.round(x);
export const ratio3 = (x: number): number => +x.toFixed(3);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** BENCH_ROWS-style integer env parameter. */
export function envInt(name: string, dflt: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
}

export function hasCommand(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim() !== '';
}

/** Runs a command to completion, returning wall time, exit code and the tail of its output. */
export function timeCommand(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdoutToNull?: boolean; timeoutMs?: number; onOutput?: (chunk: string) => void } = {}): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', opts.stdoutToNull ? 'ignore' : 'pipe', 'pipe'] });
    let out = '';
    const keep = (b: Buffer) => { const text = b.toString(); out = (out + text).slice(-8000); opts.onOutput?.(text); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code) => { if (timer) clearTimeout(timer); resolve({ ms: performance.now() - t0, code, out }); });
  });
}

// ------------------------------------------------------------------ databases

export interface PgDb { url: string; name: string; port: number; pool: pg.Pool; q<T extends pg.QueryResultRow = any>(sql: string, params?: unknown[]): Promise<T[]>; close(): Promise<void> }

export function pgUrl(server: PrivateServer, db: string): string {
  const u = new URL(server.url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function createPgDb(server: PrivateServer, name: string): Promise<PgDb> {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = pgUrl(server, name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  return { url, name, port: server.port, pool, q: async (sql, params) => (await pool.query(sql, params as unknown[])).rows, close: () => pool.end() };
}

export interface MariaDb { name: string; port: number; pool: mysql.Pool; q<T = any>(sql: string, params?: unknown[]): Promise<T[]>; close(): Promise<void> }

export async function createMariaDb(server: PrivateServer, name: string): Promise<MariaDb> {
  const admin = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root', password: '' });
  await admin.query(`CREATE DATABASE \`${name}\``);
  await admin.end();
  const pool = mysql.createPool({ host: '127.0.0.1', port: server.port, user: 'root', password: '', database: name, connectionLimit: 4, multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
  return { name, port: server.port, pool, q: async (sql, params) => (await pool.query(sql, params))[0] as never, close: () => pool.end() };
}

/** The benchmark table: key, text, int, decimal, timestamp, nullable text (the e2e suites' `items`). */
export const ITEMS_PG = `CREATE TABLE items (id int PRIMARY KEY, name varchar(100), qty int, price numeric(12,2), at timestamp(6), note text)`;
export const ITEMS_MARIA = `CREATE TABLE items (id int PRIMARY KEY, name varchar(100), qty int, price decimal(12,2), at datetime(6), note text) ENGINE=InnoDB`;
export const fillPg = (from: number, to: number, t = 'items') =>
  `INSERT INTO ${t} SELECT g, 'item ' || g, g % 1000, (g * 1.25)::numeric(12,2), timestamp '2024-01-01' + g * interval '1 second 1 microsecond', CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END FROM generate_series(${from}, ${to}) g`;
export const fillMaria = (from: number, to: number, t = 'items') =>
  `INSERT INTO ${t} SELECT seq, CONCAT('item ', seq), seq % 1000, seq * 1.25, TIMESTAMPADD(MICROSECOND, seq * 1000001, '2024-01-01 00:00:00'), IF(seq % 7 = 0, NULL, MD5(seq)) FROM seq_${from}_to_${to}`;

// ------------------------------------------------------------------ gateway

export interface BenchGateway { app: App; url: string; close(): Promise<void> }

/** A real App (gateway + workers) in this process, metadata in a fresh database on `pgServer`, queues on `redis`. */
export async function startGateway(pgServer: PrivateServer, redis: PrivateServer, workerConcurrency = 8, overrides: Record<string, unknown> = {}): Promise<BenchGateway> {
  // Loaded on demand: the capture benchmark needs none of the App's module graph.
  const [{ App }, { loadConfig }, { createLogger }] = await Promise.all([
    import('../../src/app.ts'), import('../../src/config/config.ts'), import('../../src/observability/logger.ts'),
  ]);
  const id = randomBytes(4).toString('hex');
  const config = loadConfig({}, {
    port: 0, host: '127.0.0.1', databaseUrl: pgUrl(pgServer, `tributary_bench_${id}`), redisUrl: redis.url,
    queuePrefix: `b${id}`, secretKey: 'bench-secret-key-0123456789', logLevel: 'silent', workerConcurrency, ...overrides,
  } as never);
  const app = new App({ config, serve: true, worker: true, logger: createLogger(process.env.BENCH_LOG_LEVEL ?? 'silent') });
  await app.start();
  const addr = app.address();
  return { app, url: `http://127.0.0.1:${addr!.port}`, close: () => app.close() };
}

export async function gql<T = any>(url: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`GraphQL: ${body.errors.map((e) => e.message).join('; ')}`);
  return body.data as T;
}

export const JOB_FIELDS = `id status error statusReason progress { phase rowsDone rowsEstimated chunksDone chunksTotal }
  metrics { changesCaptured rowsApplied lagMs } logs(last: 100) { at level message }`;

export interface JobView {
  id: string; status: string; error: string | null; statusReason: string | null;
  progress: { phase: string; rowsDone: number; rowsEstimated: number; chunksDone: number; chunksTotal: number };
  metrics: { changesCaptured: number; rowsApplied: number; lagMs: number | null };
  logs: { at: string; level: string; message: string }[];
}

export function endpoint(kind: 'MYSQL' | 'POSTGRES', port: number, database: string, user = kind === 'MYSQL' ? 'root' : 'postgres') {
  return { kind, host: '127.0.0.1', port, user, password: '', database };
}

export async function createJob(url: string, input: Record<string, unknown>): Promise<JobView> {
  return (await gql<{ createJob: JobView }>(url, `mutation($i: JobInput!) { createJob(input: $i) { ${JOB_FIELDS} } }`, { i: input })).createJob;
}

export async function getJob(url: string, id: string): Promise<JobView> {
  return (await gql<{ job: JobView }>(url, `query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id })).job;
}

export async function deleteJob(url: string, id: string): Promise<void> {
  await gql(url, `mutation { deleteJob(id: "${id}") }`).catch(() => undefined);
}

/** Polls until `ok(job)`; throws on FAILED or timeout. */
export async function waitJob(url: string, id: string, ok: (j: JobView) => boolean, timeoutMs: number, label: string, everyMs = 100): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | undefined;
  while (Date.now() < deadline) {
    last = await getJob(url, id);
    if (ok(last)) return last;
    if (last.status === 'FAILED') throw new Error(`job ${id} failed while waiting for ${label}: ${last.error ?? last.statusReason}; logs: ${JSON.stringify(last.logs.slice(-5))}`);
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${label}; last: ${JSON.stringify(last?.progress)} ${last?.status}`);
}

/** Polls `fn` every `everyMs` until `ok`; returns the time (performance.now()) it first held. */
export async function waitUntil<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, label: string, everyMs = 20): Promise<{ at: number; value: T }> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (ok(last)) return { at: performance.now(), value: last };
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${label}; last ${JSON.stringify(last)}`);
}

// ------------------------------------------------------------------ CPU accounting

const CLK_TCK = 100;

/** utime+stime (+ reaped children's) of a process and every live descendant, in seconds, from /proc. */
export function processTreeCpuSeconds(rootPid: number | undefined): number {
  if (!rootPid) return 0;
  let stats: { pid: number; ppid: number; ticks: number }[] = [];
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      let raw: string;
      try { raw = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
      const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
      // fields after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
      stats.push({ pid: Number(d), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    }
  } catch { stats = []; }
  const children = new Map<number, number[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const byPid = new Map(stats.map((s) => [s.pid, s.ticks]));
  let ticks = 0;
  const walk = (pid: number) => { ticks += byPid.get(pid) ?? 0; for (const c of children.get(pid) ?? []) walk(c); };
  walk(rootPid);
  return ticks / CLK_TCK;
}

/** CPU seconds of this process (all threads). */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU used by each named party between start() and stop(), in seconds. */
export function cpuMeter(parties: Record<string, () => number>) {
  const start = Object.fromEntries(Object.entries(parties).map(([k, f]) => [k, f()]));
  return {
    stop(): Record<string, number> {
      return Object.fromEntries(Object.entries(parties).map(([k, f]) => [k, +(f() - start[k]!).toFixed(2)]));
    },
  };
}

/**
 * With BENCH_CPU_PROF=<dir>, a V8 CPU profile of this process (Tributary's capture and apply run in it) over
 * one timed window, written as <dir>/<label>.cpuprofile for `node bench/support/profile-summary.mjs`. Off by
 * default: the sampling costs CPU the figures would then include. BENCH_GC=1 (gcWindow) rides on the same window.
 */
export async function profileWindow(label: string): Promise<() => Promise<void>> {
  const gcStop = gcWindow(label);
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return async () => gcStop();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  // BENCH_CPU_PROF_HEAP=1: a sampled allocation profile instead (bytes allocated by stack, .heapprofile).
  const heap = process.env.BENCH_CPU_PROF_HEAP === '1';
  const name = join(dir, label.replace(/[^A-Za-z0-9_.-]+/g, '_'));
  if (heap) {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  } else {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 500 });
    await session.post('Profiler.start');
  }
  return async () => {
    mkdirSync(dir, { recursive: true });
    if (heap) writeFileSync(`${name}.heapprofile`, JSON.stringify((await session.post('HeapProfiler.stopSampling')).profile));
    else writeFileSync(`${name}.cpuprofile`, JSON.stringify((await session.post('Profiler.stop')).profile));
    session.disconnect();
    gcStop();
  };
}

/** With BENCH_GC=1, the garbage collections of the window by kind (count, total and longest pause) on stderr. */
function gcWindow(label: string): () => void {
  if (process.env.BENCH_GC !== '1') return () => undefined;
  const kinds: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
  const seen = new Map<string, { n: number; ms: number; max: number }>();
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const k = kinds[((e as { detail?: { kind?: number } }).detail)?.kind ?? 0] ?? 'other';
      const s = seen.get(k) ?? { n: 0, ms: 0, max: 0 };
      s.n++; s.ms += e.duration; s.max = Math.max(s.max, e.duration);
      seen.set(k, s);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const faults0 = process.resourceUsage().minorPageFault;
  const t0 = Date.now() / 1000;
  const cpu0 = process.cpuUsage();
  return () => {
    obs.disconnect();
    const cpu = process.cpuUsage(cpu0);
    const parts = [...seen].map(([k, s]) => `${k} ${s.n}x ${s.ms.toFixed(0)} ms (max ${s.max.toFixed(1)})`);
    const totals = `cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, minor faults ${process.resourceUsage().minorPageFault - faults0}`;
    process.stderr.write(`gc ${label} (${t0.toFixed(1)}-${(Date.now() / 1000).toFixed(1)}): ${parts.join(', ') || 'none'}; ${totals}\n`);
  };
}

/** The 1-minute load average now. */
export function loadAverage(): number {
  return +loadavg()[0]!.toFixed(2);
}

/**
 * Waits (at most `maxMs`) until the 1-minute load average is below `below`. Runs of a script follow one
 * another, so without a pause each one starts at the load the previous runs left, and figures late in a
 * script came at load above 2 (the 100-row apply runs in docs/benchmarks.md, ninth round). Returns the load
 * then, which the caller still records with its figures.
 */
export async function quietDown(below = 1.5, maxMs = 60_000): Promise<number> {
  const until = Date.now() + maxMs;
  while (loadavg()[0]! >= below && Date.now() < until) await new Promise((r) => setTimeout(r, 2000));
  return loadAverage();
}

/**
 * How fast this machine runs the kind of work Tributary's process does, in
 * microseconds per unit (lower is faster): 2,000 change-like objects built,
 * JSON-encoded, turned into a Buffer and back, and parsed; best of 7 rounds.
 * The 2 shared cores of this machine kind were seen to differ by 1.5-2x from
 * one session to the next, so rows/s from different sessions compare only
 * together with this figure (docs/benchmarks.md, How these are measured).
 */
export function machineCalibrationUs(): number {
  const unit = () => {
    const events = [];
    for (let i = 0; i < 2000; i++) {
      events.push({ sequence: `0000000${i}.0000${i}`, op: 'u', before: { id: i }, after: { id: i, name: `item ${i}`, qty: i % 1000, price: `${i}.25`, at: '2024-01-01 00:00:00.000000', note: 'u' } });
    }
    const text = JSON.stringify(events);
    const back = JSON.parse(Buffer.from(text).toString()) as unknown[];
    return back.length;
  };
  let best = Infinity;
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let k = 0; k < 10; k++) unit();
    best = Math.min(best, (performance.now() - t0) * 100);
  }
  return Math.round(best);
}

/**
 * Runs SQL statements (one autocommit transaction each) from a client in its
 * own process (psql or mariadb), as an application would: the writer shares
 * neither the event loop nor the CPU accounting of the process under test.
 */
export async function writeFromClient(kind: 'pg' | 'maria', port: number, db: string, statements: string[]): Promise<number> {
  const file = join(mkdtempSync(join(tmpdir(), 'bench-writer-')), 'w.sql');
  writeFileSync(file, statements.map((s) => `${s};`).join('\n'));
  const r = kind === 'pg'
    ? await timeCommand('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-f', file], { stdoutToNull: true })
    : await timeCommand('sh', ['-c', `mariadb -h 127.0.0.1 -P ${port} -u root ${db} < ${file}`], { stdoutToNull: true });
  if (r.code !== 0) throw new Error(`writer failed (${r.code}): ${r.out}`);
  return r.ms;
}
