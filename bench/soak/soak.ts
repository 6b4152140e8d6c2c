/**
 * `npm run soak`: a long run of one synchronous MariaDB -> PostgreSQL job at a
 * steady change rate, watching for anything that grows.
 *
 * Private MariaDB (source, row binlog), PostgreSQL (destination and
 * metadata) and Redis are started under a temporary directory; Tributary
 * runs as a child process (`node bin/tributary.js start`, gateway + workers,
 * as in production) so its RSS is its own. A writer keeps SOAK_RATE row
 * changes per second on the source (transactions of SOAK_TX_CHANGES changes:
 * 30% inserts at the top of the key range, 40% updates in its middle, 30%
 * deletes at the bottom, so the table keeps its size). Every
 * SOAK_SAMPLE_SECONDS it samples:
 *   - RSS of the Tributary process (/proc/<pid>/status VmRSS) and its CPU;
 *   - event-loop delay, p99 and max over the interval (prom-client's
 *     monitorEventLoopDelay gauges on the child's /metrics, reset per scrape);
 *   - replication lag: the job's metrics.lagMs (now minus the source commit
 *     time of the last applied change; MariaDB commit times have 1 s
 *     resolution), and an end-to-end probe: a marker row is committed on the
 *     source every 100 ms, and the probe reports how long ago the oldest
 *     marker missing at the destination was committed (0 if none is missing);
 *   - Redis used_memory (INFO memory).
 * At the end the writer stops, the destination must catch up and match the
 * source (count, sum of keys, sum of amounts), and a least-squares slope over
 * the second half of the samples (the first half is warm-up: caches, JIT,
 * feed retention reaching its steady size) is compared with thresholds: a
 * figure trends upward when its slope exceeds the threshold and is at least
 * twice the slope's standard error (so GC sawtooth in a short run is not
 * called a leak; in the hour run the standard error is small and the
 * threshold decides). The
 * run writes docs/soak.svg (plot drawn by plain code) and docs/soak.md, and
 * exits 1 if a slope exceeds its threshold or the destination does not match.
 *
 * Environment (defaults): SOAK_RATE 5000, SOAK_MINUTES 60, SOAK_SAMPLE_SECONDS 10,
 * SOAK_TX_CHANGES 50, SOAK_SEED_ROWS 100000, SOAK_WRITERS 2, SOAK_PARALLEL_WORKERS 4,
 * SOAK_FEED_MAX_CHANGES 250000 (feed retention, so Redis reaches its steady size
 * within minutes), SOAK_MAX_RSS_SLOPE_MB_PER_MIN 1, SOAK_MAX_LAG_SLOPE_MS_PER_MIN 500,
 * SOAK_MAX_LOOP_SLOPE_MS_PER_MIN 2, SOAK_MAX_LAG_MS 10000 (the second half's median end-to-end
 * lag must stay below it: a lag that stopped growing at minutes is no pass), SOAK_OUT_DIR docs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from '../../src/devtools/private-servers.ts';

// ------------------------------------------------------------------ parameters

function envNum(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return v;
}

const P = {
  rate: envNum('SOAK_RATE', 5000),
  minutes: envNum('SOAK_MINUTES', 60),
  sampleSeconds: envNum('SOAK_SAMPLE_SECONDS', 10),
  txChanges: Math.max(10, Math.floor(envNum('SOAK_TX_CHANGES', 50))),
  seedRows: Math.floor(envNum('SOAK_SEED_ROWS', 100_000)),
  writers: Math.floor(envNum('SOAK_WRITERS', 2)),
  parallelWorkers: Math.floor(envNum('SOAK_PARALLEL_WORKERS', 4)),
  feedMaxChanges: Math.floor(envNum('SOAK_FEED_MAX_CHANGES', 250_000)),
  maxRssSlope: envNum('SOAK_MAX_RSS_SLOPE_MB_PER_MIN', 1),
  maxLagSlope: envNum('SOAK_MAX_LAG_SLOPE_MS_PER_MIN', 500),
  maxLoopSlope: envNum('SOAK_MAX_LOOP_SLOPE_MS_PER_MIN', 2),
  /** Keeping up: the second half's median end-to-end lag must stay below this (a flat but huge lag is no pass). */
  maxLagMs: envNum('SOAK_MAX_LAG_MS', 10_000),
  outDir: process.env.SOAK_OUT_DIR ?? 'docs',
};

const say = (s: string) => process.stderr.write(`soak: ${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)); });
  });
}

function withDb(url: string, db: string): string {
  const u = new URL(url); u.pathname = `/${db}`; return u.toString();
}

// ------------------------------------------------------------------ Tributary child

interface Child { proc: ChildProcess; url: string; logFile: string; exited: Promise<number | null> }

async function startTributary(tmp: string, pgs: PrivateServer, redis: PrivateServer): Promise<Child> {
  const port = await freePort();
  const logFile = path.join(tmp, 'tributary.log');
  const log = createWriteStream(logFile);
  const proc = spawn(process.execPath, ['bin/tributary.js', 'start'], {
    env: {
      ...process.env, PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: withDb(pgs.url, 'tributary'), REDIS_URL: redis.url,
      TRIBUTARY_SECRET_KEY: 'soak-secret-key-0123456789', LOG_LEVEL: 'warn', FEED_MAX_CHANGES: String(P.feedMaxChanges),
      TRIBUTARY_SECRET_KEY_FILE: path.join(tmp, 'secret.key'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.pipe(log); proc.stderr!.pipe(log);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`tributary exited with ${proc.exitCode}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const ok = await fetch(`${url}/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error('tributary not ready within 60 s');
    await sleep(250);
  }
  return { proc, url, logFile, exited };
}

async function gql<T>(url: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`GraphQL: ${body.errors.map((e) => e.message).join('; ')}`);
  return body.data as T;
}

interface JobView { status: string; error: string | null; progress: { phase: string }; metrics: { changesCaptured: number; rowsApplied: number; lagMs: number | null } }

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

// ------------------------------------------------------------------ source writer

class Writer {
  private lo: number;
  private hi: number; // next id to insert
  reserved = 0;
  changes = 0;
  transactions = 0;
  retries = 0;
  private markId = 0;
  readonly marks = new Map<number, number>(); // marker id -> commit time (ms)
  private stopped = false;
  error?: Error;
  private t0 = 0;
  private loops: Promise<void>[] = [];

  constructor(private readonly pool: mysql.Pool, seedRows: number) {
    this.lo = 1;
    this.hi = seedRows + 1;
  }

  start(): void {
    this.t0 = performance.now();
    const fail = (err: unknown) => { this.error ??= err as Error; this.stopped = true; };
    for (let i = 0; i < P.writers; i++) this.loops.push(this.loop().catch(fail));
    this.loops.push(this.markLoop().catch(fail));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private nextTx(): string {
    const n = P.txChanges;
    const ins = Math.round(n * 0.3); const del = Math.round(n * 0.3); const upd = n - ins - del;
    const insFrom = this.hi; this.hi += ins;
    const delFrom = this.lo; this.lo += del;
    const values = Array.from({ length: ins }, (_, i) => {
      const id = insFrom + i;
      return `(${id},'customer-${id % 997}',${(id % 10_000) / 100 + 1},'new','soak row ${id}',NOW(6))`;
    });
    // Updates stay clear of both ends, so no concurrent insert or delete touches them.
    const span = Math.max(1, this.hi - this.lo - 10_000);
    const ids = new Set<number>();
    while (ids.size < upd) ids.add(this.lo + 5_000 + Math.floor(Math.random() * span));
    const sorted = [...ids].sort((a, b) => a - b);
    return [
      'START TRANSACTION',
      `INSERT INTO orders (id, customer, amount, status, note, updated_at) VALUES ${values.join(',')}`,
      `UPDATE orders SET amount = amount + 1, status = IF(status = 'paid', 'shipped', 'paid'), updated_at = NOW(6) WHERE id IN (${sorted.join(',')})`,
      `DELETE FROM orders WHERE id BETWEEN ${delFrom} AND ${delFrom + del - 1}`,
      'COMMIT',
    ].join(';');
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const due = (P.rate * (performance.now() - this.t0)) / 1000 - this.reserved;
      if (due < P.txChanges) { await sleep(Math.max(1, Math.ceil(((P.txChanges - due) / P.rate) * 1000))); continue; }
      this.reserved += P.txChanges;
      const sql = this.nextTx();
      for (let attempt = 0; ; attempt++) {
        const conn = await this.pool.getConnection();
        try {
          const [results] = (await conn.query(sql)) as unknown as [{ affectedRows?: number }[]];
          this.changes += results.reduce((s, r) => s + (r.affectedRows ?? 0), 0);
          this.transactions++;
          break;
        } catch (err) {
          // A lock wait timeout rolls back the statement only: end the transaction before retrying.
          await conn.query('ROLLBACK').catch(() => undefined);
          if (attempt >= 5) throw err;
          this.retries++;
          await sleep(50);
        } finally {
          conn.release();
        }
      }
    }
  }

  /** A marker row every 100 ms: the end-to-end lag probe's clock. */
  private async markLoop(): Promise<void> {
    while (!this.stopped) {
      const id = ++this.markId;
      await this.pool.query('INSERT INTO marks (id) VALUES (?)', [id]);
      this.marks.set(id, Date.now());
      await sleep(100);
    }
  }

  /** Age (ms) of the oldest committed marker after `appliedMax` (0 when none is missing). */
  lagAfter(appliedMax: number): number {
    const t = this.marks.get(appliedMax + 1);
    for (const k of this.marks.keys()) { if (k < appliedMax - 50) this.marks.delete(k); else break; }
    return t === undefined ? 0 : Date.now() - t;
  }
}

// ------------------------------------------------------------------ samples and trends

interface Sample {
  t: number; // minutes since the writer started
  rssMb: number;
  cpuPct: number;
  loopP99Ms: number;
  loopMaxMs: number;
  jobLagMs: number;
  e2eLagMs: number;
  redisMb: number;
  /** Machine load average (1 min): other work on the shared cores shows here. */
  load1: number;
  written: number;
  captured: number;
  applied: number;
}

/** Least-squares fit of y over x: slope, intercept and the slope's standard error. */
export function fit(xs: number[], ys: number[]): { slope: number; intercept: number; stderr: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / Math.max(1, n); const my = ys.reduce((a, b) => a + b, 0) / Math.max(1, n);
  let num = 0; let den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (ys[i]! - my); den += (xs[i]! - mx) ** 2; }
  const slope = den === 0 ? 0 : num / den;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i]! - intercept - slope * xs[i]!) ** 2;
  const stderr = n > 2 && den > 0 ? Math.sqrt(sse / (n - 2) / den) : Infinity;
  return { slope, intercept, stderr };
}

interface Trend { key: keyof Sample; label: string; unit: string; threshold?: number; slope: number; intercept: number; stderr: number; min: number; median: number; max: number; last: number; ok: boolean }

function trends(samples: Sample[]): Trend[] {
  const half = samples.filter((s) => s.t >= samples[samples.length - 1]!.t / 2);
  const spec: [keyof Sample, string, string, number | undefined][] = [
    ['rssMb', 'Tributary RSS', 'MB', P.maxRssSlope],
    ['loopP99Ms', 'event-loop delay p99', 'ms', P.maxLoopSlope],
    ['jobLagMs', 'replication lag (job lagMs)', 'ms', P.maxLagSlope],
    ['e2eLagMs', 'replication lag (end-to-end probe)', 'ms', P.maxLagSlope],
    ['loopMaxMs', 'event-loop delay max', 'ms', undefined],
    ['redisMb', 'Redis used_memory', 'MB', undefined],
    ['cpuPct', 'Tributary CPU', '% of one core', undefined],
    ['load1', 'machine load average (1 min)', '', undefined],
  ];
  return spec.map(([key, label, unit, threshold]) => {
    const xs = half.map((s) => s.t); const ys = half.map((s) => s[key]);
    const { slope: b, intercept: a, stderr } = fit(xs, ys);
    const all = samples.map((s) => s[key]).sort((p, q) => p - q);
    return {
      key, label, unit, threshold, slope: b, intercept: a, stderr, min: all[0]!, median: all[Math.floor(all.length / 2)]!, max: all[all.length - 1]!,
      // Upward = above the threshold and at least twice the slope's standard error (told apart from GC sawtooth noise).
      last: samples[samples.length - 1]![key], ok: threshold === undefined || !(b > threshold && b > 2 * stderr),
    };
  });
}

// ------------------------------------------------------------------ SVG (plain code)

function esc(s: string): string { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function renderSvg(samples: Sample[], tr: Trend[], title: string): string {
  const panels: { title: string; unit: string; series: { key: keyof Sample; color: string; name: string }[] }[] = [
    { title: 'Tributary RSS', unit: 'MB', series: [{ key: 'rssMb', color: '#1f77b4', name: 'RSS' }] },
    { title: 'Event-loop delay (per interval)', unit: 'ms', series: [{ key: 'loopP99Ms', color: '#d62728', name: 'p99' }, { key: 'loopMaxMs', color: '#ff9896', name: 'max' }] },
    { title: 'Replication lag', unit: 'ms', series: [{ key: 'e2eLagMs', color: '#2ca02c', name: 'end-to-end probe' }, { key: 'jobLagMs', color: '#98df8a', name: 'job lagMs' }] },
    { title: 'Redis used_memory', unit: 'MB', series: [{ key: 'redisMb', color: '#9467bd', name: 'used_memory' }] },
    { title: `Machine load average, 1 min (${os.cpus().length} cores; other work on them shows here)`, unit: 'runnable', series: [{ key: 'load1', color: '#7f7f7f', name: 'load average' }] },
  ];
  const W = 900; const PH = 190; const top = 50; const left = 70; const right = 20; const gap = 40;
  const H = top + panels.length * (PH + gap) + 20;
  const tMax = Math.max(samples[samples.length - 1]?.t ?? 1, 0.1);
  const x = (t: number) => left + ((W - left - right) * t) / tMax;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((panel, i) => {
    const y0 = top + i * (PH + gap);
    const vMax = niceMax(Math.max(...panel.series.flatMap((s) => samples.map((p) => p[s.key]).filter(Number.isFinite)), 0) * 1.1);
    const y = (v: number) => y0 + PH - (PH * v) / vMax;
    out.push(`<text x="${left}" y="${y0 - 8}" font-weight="bold">${esc(panel.title)} (${panel.unit})</text>`);
    out.push(`<rect x="${left}" y="${y0}" width="${W - left - right}" height="${PH}" fill="none" stroke="#999"/>`);
    // Second half shaded: the trend window.
    out.push(`<rect x="${x(tMax / 2)}" y="${y0}" width="${x(tMax) - x(tMax / 2)}" height="${PH}" fill="#f4f4f4"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (vMax * k) / 4; const yy = y(v);
      out.push(`<line x1="${left}" x2="${W - right}" y1="${yy}" y2="${yy}" stroke="#e0e0e0"/>`, `<text x="${left - 6}" y="${yy + 4}" text-anchor="end">${+v.toPrecision(3)}</text>`);
    }
    const step = [0.25, 0.5, 1, 2, 5, 10, 15, 30, 60].find((st) => tMax / st <= 10) ?? 120;
    for (let t = 0; t <= tMax + 1e-9; t += step) {
      out.push(`<text x="${x(t)}" y="${y0 + PH + 14}" text-anchor="middle">${+t.toFixed(2)}</text>`);
    }
    panel.series.forEach((s, j) => {
      const pts = samples.filter((p) => Number.isFinite(p[s.key])).map((p) => `${x(p.t).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${pts}"/>`);
      out.push(`<rect x="${W - right - 190}" y="${y0 + 8 + j * 15}" width="10" height="10" fill="${s.color}"/>`, `<text x="${W - right - 175}" y="${y0 + 17 + j * 15}">${esc(s.name)}</text>`);
      const t = tr.find((q) => q.key === s.key);
      if (t && samples.length > 1) {
        const a = tMax / 2; const b = tMax;
        out.push(`<line x1="${x(a)}" y1="${y(t.intercept + t.slope * a)}" x2="${x(b)}" y2="${y(t.intercept + t.slope * b)}" stroke="#000" stroke-dasharray="4 3"/>`);
      }
    });
  });
  out.push(`<text x="${W / 2}" y="${H - 6}" text-anchor="middle">minutes since the writer started (shaded: second half, where the dashed least-squares trend is fitted)</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ------------------------------------------------------------------ run

/** SIGINT/SIGTERM end the run early; main's finally still stops the child and the private servers. */
const interrupted = new AbortController();
process.once('SIGINT', () => interrupted.abort());
process.once('SIGTERM', () => interrupted.abort());
function checkInterrupted(): void {
  if (interrupted.signal.aborted) throw new Error('interrupted');
}

async function main(): Promise<number> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tributary-soak-'));
  say(`rate ${P.rate} changes/s for ${P.minutes} min, sample every ${P.sampleSeconds} s; temp ${tmp}`);
  const servers: PrivateServer[] = [];
  let child: Child | undefined;
  let srcPool: mysql.Pool | undefined; let dst: pg.Pool | undefined; let redisConn: Redis | undefined;
  try {
    const [maria, pgs, redis] = await Promise.all([startMariadb({ serverId: 1 }), startPostgres(), startRedis()]);
    servers.push(maria, pgs, redis);

    const admin = await mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: 'root', password: '', multipleStatements: true });
    await admin.query(`CREATE DATABASE soak; USE soak;
      CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL, amount DECIMAL(12,2) NOT NULL,
        status ENUM('new','paid','shipped') NOT NULL, note TEXT, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB;
      CREATE TABLE marks (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;
      INSERT INTO orders SELECT seq, CONCAT('customer-', seq % 997), (seq % 10000) / 100 + 1, 'new', CONCAT('seed row ', seq), NOW(6) FROM seq_1_to_${P.seedRows};`);
    await admin.end();
    const pgAdmin = new pg.Client({ connectionString: pgs.url });
    await pgAdmin.connect();
    await pgAdmin.query('CREATE DATABASE warehouse');
    await pgAdmin.end();

    child = await startTributary(tmp, pgs, redis);
    const pid = child.proc.pid!;
    say(`tributary pid ${pid} at ${child.url}`);
    const created = await gql<{ createJob: { id: string } }>(child.url, 'mutation($i: JobInput!) { createJob(input: $i) { id } }', { i: {
      name: 'soak', type: 'SYNCHRONOUS', parallelWorkers: P.parallelWorkers,
      source: { kind: 'MYSQL', host: '127.0.0.1', port: maria.port, user: 'root', password: '' },
      destination: { kind: 'POSTGRES', host: '127.0.0.1', port: pgs.port, user: 'postgres', password: '', database: 'warehouse' },
      tables: [{ schema: 'soak', tables: ['orders', 'marks'] }],
    } });
    const jobId = created.createJob.id;
    const job = async () => (await gql<{ job: JobView }>(child!.url, `query($id: ID!) { job(id: $id) { status error progress { phase } metrics { changesCaptured rowsApplied lagMs } } }`, { id: jobId })).job;
    const snapDeadline = Date.now() + 10 * 60_000;
    for (;;) {
      const j = await job();
      if (j.status === 'FAILED') throw new Error(`job failed: ${j.error}`);
      if (j.progress.phase === 'streaming') break;
      if (Date.now() > snapDeadline) throw new Error(`snapshot not done in 10 min: ${JSON.stringify(j)}`);
      checkInterrupted();
      await sleep(500);
    }
    say('snapshot done; job streaming; writer starts');

    srcPool = mysql.createPool({ host: '127.0.0.1', port: maria.port, user: 'root', password: '', database: 'soak', connectionLimit: P.writers + 2, multipleStatements: true });
    dst = new pg.Pool({ connectionString: withDb(pgs.url, 'warehouse'), max: 2 });
    redisConn = new Redis(redis.url);
    const writer = new Writer(srcPool, P.seedRows);
    const samples: Sample[] = [];
    const t0 = Date.now();
    writer.start();
    let lastCpu = NaN; let lastAt = Date.now();
    const sample = async (): Promise<Sample> => {
      const metrics = await (await fetch(`${child!.url}/metrics`)).text();
      const cpu = metric(metrics, 'tributary_process_cpu_seconds_total');
      const now = Date.now();
      const cpuPct = Number.isFinite(lastCpu) ? (100 * (cpu - lastCpu)) / ((now - lastAt) / 1000) : NaN;
      lastCpu = cpu; lastAt = now;
      const j = await job();
      if (j.status === 'FAILED') throw new Error(`job failed: ${j.error}`);
      const applied = Number((await dst!.query('SELECT coalesce(max(id), 0) AS m FROM soak.marks')).rows[0].m);
      const info = await redisConn!.info('memory');
      const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
      return {
        t: (now - t0) / 60_000, rssMb: rssMb(pid), cpuPct,
        loopP99Ms: metric(metrics, 'tributary_nodejs_eventloop_lag_p99_seconds') * 1000,
        loopMaxMs: metric(metrics, 'tributary_nodejs_eventloop_lag_max_seconds') * 1000,
        jobLagMs: j.metrics.lagMs ?? 0, e2eLagMs: writer.lagAfter(applied), redisMb: used / 2 ** 20, load1: os.loadavg()[0]!,
        written: writer.changes, captured: j.metrics.changesCaptured, applied: j.metrics.rowsApplied,
      };
    };
    await sample(); // primes the CPU counter and resets the event-loop histogram
    const end = t0 + P.minutes * 60_000;
    while (Date.now() < end) {
      await sleep(Math.min(P.sampleSeconds * 1000, Math.max(0, end - Date.now())));
      if (interrupted.signal.aborted) { await writer.stop(); checkInterrupted(); }
      if (child.proc.exitCode !== null) throw new Error(`tributary exited during the run: ${readFileSync(child.logFile, 'utf8').slice(-2000)}`);
      if (writer.error) throw new Error(`source writer failed: ${writer.error.message}`);
      const s = await sample();
      samples.push(s);
      say(`t=${s.t.toFixed(2)} min rss ${s.rssMb.toFixed(0)} MB cpu ${s.cpuPct.toFixed(0)}% loop p99 ${s.loopP99Ms.toFixed(1)} ms lag job ${s.jobLagMs} ms e2e ${s.e2eLagMs} ms redis ${s.redisMb.toFixed(0)} MB load ${s.load1.toFixed(1)} written ${s.written} applied ${s.applied}`);
    }
    await writer.stop();
    if (writer.error) throw new Error(`source writer failed: ${writer.error.message}`);
    const elapsedS = (Date.now() - t0) / 1000;
    const achieved = writer.changes / elapsedS;
    say(`writer stopped: ${writer.changes} changes in ${writer.transactions} transactions (${achieved.toFixed(0)}/s), ${writer.retries} retries; waiting for catch-up`);

    // Catch-up and comparison.
    const stopAt = Date.now();
    const sumsSrc = async () => {
      const [rows] = (await srcPool!.query('SELECT count(*) AS n, coalesce(sum(id),0) AS k, coalesce(sum(amount),0) AS a FROM orders')) as unknown as [{ n: number; k: string; a: string }[]];
      return `${rows[0]!.n}/${rows[0]!.k}/${Number(rows[0]!.a).toFixed(2)}`;
    };
    const sumsDst = async () => {
      const r = (await dst!.query('SELECT count(*)::bigint AS n, coalesce(sum(id),0) AS k, coalesce(sum(amount),0) AS a FROM soak.orders')).rows[0];
      return `${r.n}/${r.k}/${Number(r.a).toFixed(2)}`;
    };
    const source = await sumsSrc();
    let dest = '';
    let caughtUpS = NaN;
    while (Date.now() - stopAt < 180_000) {
      dest = await sumsDst();
      if (dest === source) { caughtUpS = (Date.now() - stopAt) / 1000; break; }
      checkInterrupted();
      await sleep(250);
    }
    const matches = dest === source;
    say(`destination ${matches ? `matches the source after ${caughtUpS.toFixed(1)} s` : `DOES NOT match: source ${source}, destination ${dest}`}`);

    const final = await job();
    const tr = trends(samples);
    const secondHalfLag = samples.filter((s) => s.t >= samples[samples.length - 1]!.t / 2).map((s) => s.e2eLagMs).sort((a, b) => a - b);
    const medianLag = secondHalfLag[Math.floor(secondHalfLag.length / 2)] ?? 0;
    const keptUp = medianLag <= P.maxLagMs;
    const ok = matches && keptUp && tr.every((t) => t.ok);
    const runLabel = `${P.minutes}-minute run`;
    const title = `Tributary soak: MariaDB -> PostgreSQL at ${P.rate} changes/s, ${runLabel}${P.minutes < 60 ? ' (validation; the full soak is 60 min)' : ''}`;
    mkdirSync(P.outDir, { recursive: true });
    writeFileSync(path.join(P.outDir, 'soak.svg'), renderSvg(samples, tr, title));
    writeFileSync(path.join(P.outDir, 'soak.md'), renderMd({ samples, tr, ok, matches, keptUp, medianLag, caughtUpS, achieved, writer, source, dest, final, elapsedS }));
    say(`second-half median end-to-end lag ${medianLag} ms (max ${P.maxLagMs}): ${keptUp ? 'kept up' : 'DID NOT KEEP UP'}`);
    say(`wrote ${path.join(P.outDir, 'soak.svg')} and ${path.join(P.outDir, 'soak.md')}: ${ok ? 'PASS' : 'FAIL'}`);
    for (const t of tr) say(`  ${t.label}: slope ${t.slope.toFixed(3)} ± ${t.stderr.toFixed(3)} ${t.unit}/min${t.threshold !== undefined ? ` (max ${t.threshold}) ${t.ok ? 'ok' : 'TRENDS UP'}` : ''}`);
    return ok ? 0 : 1;
  } finally {
    await srcPool?.end().catch(() => undefined);
    await dst?.end().catch(() => undefined);
    redisConn?.disconnect();
    if (child && child.proc.exitCode === null) {
      child.proc.kill('SIGTERM');
      const killer = setTimeout(() => child!.proc.kill('SIGKILL'), 20_000);
      await child.exited;
      clearTimeout(killer);
    }
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface MdInput {
  samples: Sample[]; tr: Trend[]; ok: boolean; matches: boolean; keptUp: boolean; medianLag: number; caughtUpS: number; achieved: number; writer: Writer;
  source: string; dest: string; final: JobView; elapsedS: number;
}

function renderMd(r: MdInput): string {
  const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const L: string[] = [
    '# Soak', '',
    '<!-- Generated by `npm run soak` (bench/soak/soak.ts); rerunning it overwrites this file and soak.svg. -->', '',
  ];
  if (P.minutes < 60) {
    L.push(`> **This is a ${P.minutes}-minute validation run (SOAK_MINUTES=${P.minutes}), not the one-hour soak** the`,
      '> production-readiness issue asks for. `npm run soak` (default SOAK_MINUTES=60) runs the hour;', '> its figures replace these.', '');
  }
  L.push(
    `Run at ${new Date().toISOString()} on ${machine}. One synchronous MariaDB -> PostgreSQL job`,
    `(${P.parallelWorkers} apply lanes) in a child Tributary process (\`tributary start\`: gateway + workers),`,
    `private MariaDB, PostgreSQL and Redis on the same machine; feed retention ${P.feedMaxChanges} changes.`,
    `Writer target ${P.rate} changes/s in transactions of ${P.txChanges} (30% insert, 40% update, 30% delete), ${P.writers} connections;`,
    `sampled every ${P.sampleSeconds} s. Method: the header of \`bench/soak/soak.ts\`. Thresholds (second-half slope): RSS ${P.maxRssSlope} MB/min,`,
    `event-loop delay p99 ${P.maxLoopSlope} ms/min, replication lag ${P.maxLagSlope} ms/min; and the second half's median end-to-end lag below ${P.maxLagMs} ms.`, '',
    `**Verdict: ${r.ok ? 'PASS' : 'FAIL'}**: ${r.matches ? `destination matched the source ${f(r.caughtUpS)} s after the writer stopped` : 'destination did NOT match the source'}; ` +
      `${r.tr.filter((t) => t.threshold !== undefined && !t.ok).map((t) => t.label).join(', ').replace(/^(.+)$/, 'trends upward: $1') || 'no watched figure trends upward'}; ` +
      `second-half median end-to-end lag ${r.medianLag} ms (${r.keptUp ? 'kept up' : `did NOT keep up: above ${P.maxLagMs} ms`}).`,
    `Machine load average (1 min) during the run: median ${f(r.tr.find((t) => t.key === 'load1')!.median)}, max ${f(r.tr.find((t) => t.key === 'load1')!.max)} on ${os.cpus().length} cores ` +
      '(other jobs share these cores; a load far above the core count starves Tributary and the databases, and replication lag then grows).', '',
    '![soak plot](soak.svg)', '',
    '| figure | value |', '|---|---|',
    `| duration | ${f(r.elapsedS / 60, 2)} min |`,
    `| changes written (source, affected rows) | ${r.writer.changes} in ${r.writer.transactions} transactions |`,
    `| achieved source rate | ${f(r.achieved, 0)} changes/s (target ${P.rate}) |`,
    `| changes captured / rows applied (job metrics; include the marker rows, 10/s) | ${r.final.metrics.changesCaptured} / ${r.final.metrics.rowsApplied} |`,
    `| writer retries (deadlock/lock wait) | ${r.writer.retries} |`,
    `| source vs destination (count/sum(id)/sum(amount)) | ${r.source} vs ${r.dest} |`,
    `| catch-up after the writer stopped | ${f(r.caughtUpS)} s |`, '',
    'Trend: least-squares slope over the second half of the samples (the first half is warm-up), with its standard error.',
    'A watched figure trends upward when the slope exceeds its threshold and at least twice its standard error.', '',
    '| figure | min | median | max | last | slope per min (± s.e.) | threshold per min | verdict |', '|---|---|---|---|---|---|---|---|',
  );
  for (const t of r.tr) {
    L.push(`| ${t.label} (${t.unit}) | ${f(t.min)} | ${f(t.median)} | ${f(t.max)} | ${f(t.last)} | ${f(t.slope, 3)} ± ${f(t.stderr, 3)} | ${t.threshold ?? 'reported only'} | ${t.threshold === undefined ? '-' : t.ok ? 'ok' : 'trends up'} |`);
  }
  L.push('', '<details><summary>All samples</summary>', '',
    '| min | RSS MB | CPU % | loop p99 ms | loop max ms | job lagMs | e2e lag ms | Redis MB | load avg | written | captured | applied |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of r.samples) {
    L.push(`| ${f(s.t, 2)} | ${f(s.rssMb)} | ${f(s.cpuPct, 0)} | ${f(s.loopP99Ms)} | ${f(s.loopMaxMs)} | ${s.jobLagMs} | ${s.e2eLagMs} | ${f(s.redisMb)} | ${f(s.load1)} | ${s.written} | ${s.captured} | ${s.applied} |`);
  }
  L.push('', '</details>', '');
  return L.join('\n');
}

main().then((code) => process.exit(code), (err) => { process.stderr.write(`soak: failed: ${(err as Error).stack ?? err}\n`); process.exit(2); });
