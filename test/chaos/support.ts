/**
 * Chaos suite helpers: scale (CHAOS_SCALE), Tributary gateway and worker
 * processes that can be SIGKILLed, per-case private servers, a ledger writer
 * whose every row is unique (so a lost or doubled change shows), and the two
 * end checks every case makes: destination = source row by row, and the
 * whole feed read back with no gap and no duplicate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, existsSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect } from 'vitest';
import { freePort, startMariadb, type PrivateServer } from '../../src/devtools/private-servers.ts';
import { openFeed } from '../../src/replication/feed/feed-registry.ts';
import { compareSequences } from '../../src/replication/sequence.ts';
import type { ChangeEvent } from '../../src/replication/change-event.ts';
import { openDatabase, uniq, waitFor, type DbHandle } from '../support/databases.ts';
import { forwardTo, gql, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createJob, endpoint, expectConverged, getJob, ITEMS, qname } from '../support/replication.ts';

export const SCALE = (process.env.CHAOS_SCALE ?? 'ci') === 'full' ? 'full' : 'ci';
/** `ci` count in the default (CI) run, `full` with CHAOS_SCALE=full. */
export const count = (ci: number, full: number): number => (SCALE === 'full' ? full : ci);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Where each case appends "fault | injected | lost | duplicated" lines (docs/reliability.md is written from them). */
export const REPORT = process.env.CHAOS_REPORT ?? path.join(os.tmpdir(), `tributary-chaos-report-${SCALE}.tsv`);
export function report(fault: string, injected: number, lost: number, duplicated: number, note = ''): void {
  appendFileSync(REPORT, `${new Date().toISOString()}\t${SCALE}\t${fault}\t${injected}\t${lost}\t${duplicated}\t${note}\n`);
  console.log(`chaos[${SCALE}] ${fault}: injected ${injected}, lost ${lost}, duplicated ${duplicated}${note ? ` (${note})` : ''}`);
}

export interface ProcEnv { databaseUrl: string; redisUrl: string; queuePrefix: string; secretKey: string; lockMs?: number }

export interface TributaryProc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly log: string;
  /** Gateway only. */
  readonly url?: string;
  readonly port?: number;
  alive(): boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns `node bin/tributary.js worker|serve` with the shared env and waits
 * for its ready line. Processes are tracked so `killAll` ends them.
 */
export class Processes {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-chaos-'));
  private readonly all: TributaryProc[] = [];
  private n = 0;
  constructor(public env: ProcEnv) {}

  async worker(extra: Record<string, string> = {}): Promise<TributaryProc> {
    return this.spawn('worker', undefined, extra);
  }

  async gateway(port?: number, extra: Record<string, string> = {}): Promise<TributaryProc> {
    return this.spawn('serve', port ?? (await freePort()), extra);
  }

  private async spawn(cmd: 'worker' | 'serve', port: number | undefined, extra: Record<string, string>): Promise<TributaryProc> {
    const name = `${cmd === 'serve' ? 'gateway' : 'worker'}-${++this.n}`;
    const log = path.join(this.dir, `${name}.log`);
    const child = spawn(process.execPath, ['bin/tributary.js', cmd], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        DATABASE_URL: this.env.databaseUrl, REDIS_URL: this.env.redisUrl, QUEUE_PREFIX: this.env.queuePrefix,
        TRIBUTARY_SECRET_KEY: this.env.secretKey, LOG_LEVEL: 'info', WORKER_CONCURRENCY: '8',
        TASK_LOCK_MS: String(this.env.lockMs ?? 3000), HOST: '127.0.0.1', ...(port ? { PORT: String(port) } : {}),
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = createWriteStream(log);
    child.stdout!.pipe(out); child.stderr!.pipe(out);
    const ready = cmd === 'serve' ? 'gateway listening' : 'workers started';
    const p: TributaryProc = {
      name, child, log, port, url: port ? `http://127.0.0.1:${port}` : undefined,
      alive: () => child.exitCode === null && child.signalCode === null,
      kill: async (signal = 'SIGKILL') => {
        if (!p.alive()) return;
        const exited = once(child, 'exit');
        child.kill(signal);
        await exited;
      },
    };
    this.all.push(p);
    await waitFor(async () => (existsSync(log) ? readFileSync(log, 'utf8') : ''), (s) => s.includes(ready) || !p.alive(), 90_000, `${name} ready (log ${log})`);
    if (!p.alive()) throw new Error(`${name} exited before it was ready: ${readFileSync(log, 'utf8').slice(-2000)}`);
    return p;
  }

  /** Grep every log of this case (e.g. for retry messages). */
  logs(): string {
    return this.all.map((p) => (existsSync(p.log) ? readFileSync(p.log, 'utf8') : '')).join('\n');
  }

  async killAll(): Promise<void> {
    await Promise.all(this.all.map((p) => p.kill('SIGKILL').catch(() => undefined)));
  }
}

export interface ChaosSuite {
  /** A gateway without workers: the case's workers are `procs` processes, to be SIGKILLed. */
  gw: TestGateway;
  procs: Processes;
  /** The case's own MariaDB (with `mariadb: true`), free to purge or restart. */
  maria: PrivateServer;
  /** Closed in `afterAll`, after the processes are killed and the gateway is closed. */
  handles: DbHandle[];
}

/**
 * A chaos describe block's set-up. `beforeAll`: (with `mariadb`) a private
 * MariaDB, the gateway, a Processes for its workers. `afterAll`: kill the
 * processes, close the gateway, then the handles, then stop the MariaDB.
 * The objects returned forward to those the hooks create.
 */
export function useChaosSuite(opts: { mariadb?: boolean } = {}): ChaosSuite {
  let gw: TestGateway | undefined; let procs: Processes | undefined; let maria: PrivateServer | undefined;
  const handles: DbHandle[] = [];
  beforeAll(async () => {
    if (opts.mariadb) maria = await startMariadb();
    gw = await startTestGateway({}, { worker: false });
    procs = new Processes({ databaseUrl: gw.config.databaseUrl, redisUrl: gw.config.redisUrl, queuePrefix: gw.config.queuePrefix, secretKey: gw.config.secretKey! });
  });
  afterAll(async () => {
    await procs?.killAll();
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
    await maria?.stop();
  });
  return {
    gw: forwardTo(() => gw, 'the chaos gateway'),
    procs: forwardTo(() => procs, 'the chaos processes'),
    maria: forwardTo(() => maria, 'the chaos MariaDB (useChaosSuite({ mariadb: true }))'),
    handles,
  };
}

/**
 * A MariaDB source (suite server) holding `rows` items and an empty ledger,
 * and an empty PostgreSQL destination, opened in a `beforeAll` that runs
 * after the suite's; closed with the suite's handles.
 */
export function useMariaToPostgres(suite: ChaosSuite, prefix: string, rows: number): { src: DbHandle; dst: DbHandle } {
  let src: DbHandle | undefined; let dst: DbHandle | undefined;
  beforeAll(async () => {
    src = await openDatabase('mysql', uniq(`${prefix}_src`)); suite.handles.push(src);
    dst = await openDatabase('postgres', uniq(`${prefix}_dst`)); suite.handles.push(dst);
    await src.query(ITEMS.create(src));
    await src.query(ITEMS.fill(src, rows));
    await src.query(LEDGER.create(src));
  });
  return { src: forwardTo(() => src, 'the source'), dst: forwardTo(() => dst, 'the destination') };
}

/** Deterministic pseudo-random numbers (a case's kill points are reproducible from its seed). */
export function rng(seed: number): (lo: number, hi: number) => number {
  let s = seed;
  return (lo, hi) => { s = (s * 1103515245 + 12345) & 0x7fffffff; return lo + (s % (hi - lo)); };
}

/**
 * The ledger: insert-only and keyless (so a change applied twice is an extra
 * row at the destination), unique by `seq`, one transaction of 1..3 rows at a
 * time, scope `a` or `b` by parity. Every row exists once at the source, so
 * the feed must hold exactly one insert per seq, and the destination exactly
 * the source's rows. Written from the streaming phase on, except in
 * worker-kill.test.ts, which writes it during the snapshot too.
 */
export const LEDGER = {
  create(db: DbHandle): string {
    return db.kind === 'postgres'
      ? 'CREATE TABLE ledger (seq int NOT NULL, payload varchar(40), _change_selector varchar(8))'
      : 'CREATE TABLE ledger (seq int NOT NULL, payload varchar(40), _change_selector varchar(8)) ENGINE=InnoDB';
  },
  async rows(db: DbHandle, table: string): Promise<string[]> {
    return (await db.query<{ seq: number; payload: string; s: string }>(`SELECT seq, payload, _change_selector AS s FROM ${table} ORDER BY seq`)).map((r) => `${r.seq}|${r.payload}|${r.s}`);
  },
};

export interface LedgerWriter { readonly last: number; stop(): Promise<number>; errors: number; readonly journal: string[] }

/**
 * Inserts ledger rows until stopped. A failed insert (the source is being
 * restarted) is retried with the same rows after a pause, so the source ends
 * with every seq 1..last exactly once.
 */
export function startLedger(db: DbHandle, opts: { pauseMs?: number; from?: number } = {}): LedgerWriter {
  let seq = opts.from ?? 0; let stopped = false; let errors = 0;
  const journal: string[] = [];
  const note = (m: string) => { journal.push(`${new Date().toISOString()} ${m}`); };
  const done = (async () => {
    while (!stopped) {
      const k = 1 + (seq % 3);
      const rows = Array.from({ length: k }, (_, i) => seq + 1 + i);
      const values = rows.map((s) => `(${s}, 'p${s}', '${s % 2 ? 'a' : 'b'}')`).join(', ');
      try {
        await db.query(`INSERT INTO ledger (seq, payload, _change_selector) VALUES ${values}`);
        seq += k;
      } catch (err) {
        // Unknown outcome after a connection loss: if the rows made it, move on; else retry them.
        errors++;
        note(`insert ${rows[0]}..${rows.at(-1)} failed: ${(err as Error).message}`);
        await sleep(300);
        try {
          const got = await db.query<{ n: number | string }>(`SELECT count(*) AS n FROM ledger WHERE seq >= ${rows[0]}`);
          note(`  check: ${got[0]!.n} of ${k} rows there`);
          if (Number(got[0]!.n) === k) seq += k;
        } catch (e) { note(`  check failed: ${(e as Error).message}`); }
        continue;
      }
      await sleep(opts.pauseMs ?? 5);
    }
    return seq;
  })();
  return { get last() { return seq; }, get errors() { return errors; }, journal, stop: async () => { stopped = true; return done; } };
}

export interface FeedCheck {
  changes: number; transactions: number; ledgerInserts: number; missing: number[]; duplicated: number[];
  /** Ledger seq -> feed sequences of its inserts (for diagnosing a gap or a duplicate). */
  ledgerAt: Map<number, string[]>;
}

/**
 * Reads the whole feed from Redis (oldest retained to newest) and asserts:
 * sequences strictly increasing, each (txid, index) once, each transaction's
 * indexes 0..n-1 with no hole. With `ledgerLast`, the ledger inserts must be
 * exactly seq `ledgerFrom`..`ledgerLast`, each once (no gap, no duplicate);
 * `ledgerFrom` 'feed' starts at the first seq the feed holds.
 */
export async function checkFeed(redisUrl: string, prefix: string, feedName: string, ledgerLast?: number, ledgerFrom: number | 'feed' = 1): Promise<FeedCheck> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  const feed = openFeed(redis, feedName, { prefix });
  try {
    const all: ChangeEvent[] = [];
    let since: string | null = null;
    for (;;) {
      const batch = await feed.read(since, 5000);
      if (batch.length === 0) break;
      all.push(...batch);
      since = batch.at(-1)!.sequence;
    }
    const problems: string[] = [];
    const seen = new Set<string>();
    const txIndexes = new Map<string, number[]>();
    for (let i = 0; i < all.length; i++) {
      const e = all[i]!;
      if (i > 0 && compareSequences(all[i - 1]!.sequence, e.sequence) >= 0) problems.push(`sequence not increasing: ${all[i - 1]!.sequence} then ${e.sequence}`);
      const id = `${e.txid}#${e.index}`;
      if (seen.has(id)) problems.push(`duplicate (txid, index) ${id} at ${e.sequence}`);
      seen.add(id);
      const list = txIndexes.get(`${e.txid}@${e.commitSequence}`) ?? [];
      list.push(e.index);
      txIndexes.set(`${e.txid}@${e.commitSequence}`, list);
    }
    for (const [tx, idx] of txIndexes) {
      if (idx.some((v, i) => v !== i)) problems.push(`transaction ${tx} has indexes ${idx.slice(0, 10).join(',')}: a hole or a repeat`);
    }
    const ledger = new Map<number, number>();
    const ledgerAt = new Map<number, string[]>();
    for (const e of all) if (e.table === 'ledger' && e.op === 'insert') {
      const s = Number(e.after!.seq);
      ledger.set(s, (ledger.get(s) ?? 0) + 1);
      ledgerAt.set(s, [...(ledgerAt.get(s) ?? []), `${e.sequence}/tx${e.txid}`]);
    }
    const missing: number[] = []; const duplicated: number[] = [];
    if (ledgerLast !== undefined) {
      // 'feed': the ledger was written before the capture started too; those rows reach the destination by the snapshot.
      const from = ledgerFrom === 'feed' ? Math.min(ledgerLast + 1, ...ledger.keys()) : ledgerFrom;
      for (let s = from; s <= ledgerLast; s++) if (!ledger.has(s)) missing.push(s);
      for (const [s, n] of ledger) if (n > 1) duplicated.push(s);
    }
    expect(problems.slice(0, 20), `feed ${feedName}`).toEqual([]);
    return { changes: all.length, transactions: txIndexes.size, ledgerInserts: [...ledger.values()].reduce((a, b) => a + b, 0), missing, duplicated, ledgerAt };
  } finally {
    redis.disconnect();
  }
}

/** Waits for destination = source on `items` (when present) and `ledger`; returns the ledger's destination rows and the diff counts. */
export async function expectSameRows(src: DbHandle, dst: DbHandle, dstQ: (t: string) => string, opts: { items?: boolean; timeoutMs?: number } = {}): Promise<{ ledger: number; items: number; lost: number; duplicated: number }> {
  const timeout = opts.timeoutMs ?? 90_000;
  const items = opts.items ? await expectConverged(src, 'items', dst, dstQ('items'), timeout) : 0;
  const ledger = await expectConverged(src, 'ledger', dst, dstQ('ledger'), timeout, LEDGER.rows);
  const n = (await dst.query<{ n: number | string; d: number | string }>(`SELECT count(*) AS n, count(DISTINCT seq) AS d FROM ${dstQ('ledger')}`))[0]!;
  return { ledger, items, lost: ledger - Number(n.d), duplicated: Number(n.n) - Number(n.d) };
}

export { ITEMS, waitFor };

/**
 * Like support/databases.ts pgDatabase, but the pool survives its server
 * being killed (an idle client's error is logged, not thrown).
 */
export async function pgHandle(baseUrl: string, name: string): Promise<DbHandle> {
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 4 });
  pool.on('error', () => undefined);
  return {
    kind: 'postgres', host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: '', database: name,
    async query(sql, params) { return (await pool.query(sql, params as unknown[])).rows; },
    close: () => pool.end(),
  };
}

/**
 * A crash of a private server: SIGKILL to it and every process it forked
 * (the PostgreSQL postmaster and all its backends), then start it again on
 * the same data directory and port, and wait until it answers queries: the
 * port opens before crash recovery is over (PostgreSQL answers 57P03 "not yet
 * accepting connections", Redis LOADING while it replays its AOF), and the
 * case's own reads of the server must not race that.
 */
export async function crashRestart(server: PrivateServer, downMs = 1000): Promise<void> {
  console.log(`${new Date().toISOString()} SIGKILL ${server.kind} :${server.port}`);
  server.kill();
  await sleep(downMs);
  await server.restart();
  await waitFor(() => answers(server), (ok) => ok, 120_000, `${server.kind} :${server.port} answering after its restart`);
  console.log(`${new Date().toISOString()} ${server.kind} :${server.port} restarted`);
}

async function answers(server: PrivateServer): Promise<boolean> {
  if (server.kind === 'postgres') {
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: server.url });
    c.on('error', () => undefined);
    try { await c.connect(); await c.query('SELECT 1'); return true; } finally { await c.end().catch(() => undefined); }
  }
  if (server.kind === 'redis') {
    const r = new Redis(server.url, { maxRetriesPerRequest: 0, enableReadyCheck: false, lazyConnect: true });
    r.on('error', () => undefined);
    try { await r.connect(); return (await r.ping()) === 'PONG'; } finally { r.disconnect(); }
  }
  const mysql = (await import('mysql2/promise')).default;
  const u = new URL(server.url);
  const c = await mysql.createConnection({ host: u.hostname, port: Number(u.port), user: 'root', password: '' });
  try { await c.query('SELECT 1'); return true; } finally { await c.end().catch(() => undefined); }
}

/** What a failed case prints: where the missing/doubled ledger rows are (source, destination, feed) and the writer's journal. */
async function diagnose(j: JobUnderTest, feed: FeedCheck, last: number): Promise<string> {
  const bad = [...feed.missing, ...feed.duplicated].sort((a, b) => a - b);
  const lo = Math.max(1, bad[0]! - 6); const hi = Math.min(last, bad.at(-1)! + 6);
  const at = async (db: DbHandle, t: string) => (await db.query<{ seq: number }>(`SELECT seq FROM ${t} WHERE seq BETWEEN ${lo} AND ${hi} ORDER BY seq`)).map((r) => Number(r.seq));
  const lines = [
    `chaos diagnosis ${j.job.name} (${j.src.kind} -> ${j.dst.kind}): ${feed.missing.length} missing from the feed, ${feed.duplicated.length} doubled; writer last ${last}`,
    `  source seq ${lo}..${hi}: ${(await at(j.src, 'ledger')).join(',')}`,
    `  destination seq ${lo}..${hi}: ${(await at(j.dst, j.dstQ('ledger'))).join(',')}`,
    `  feed: ${Array.from({ length: hi - lo + 1 }, (_, i) => lo + i).map((s) => `${s}@${(feed.ledgerAt.get(s) ?? ['-']).join('+')}`).join(' ')}`,
    '  writer journal:', ...j.writer!.journal.map((l) => `    ${l}`),
  ];
  return lines.join('\n');
}

/**
 * One replication job under test: created through the gateway, a ledger
 * writer from the streaming phase on, and the end checks.
 */
export class JobUnderTest {
  job: any;
  writer?: LedgerWriter;
  constructor(readonly url: string, readonly src: DbHandle, readonly dst: DbHandle, readonly schema: string) {}
  get dstSchema(): string { return this.dst.kind === 'mysql' ? this.dst.database : this.schema; }
  dstQ = (t: string): string => qname(this.dst, this.dstSchema, t);

  async start(name: string, itemsRows = 2000): Promise<this> {
    await this.src.query(ITEMS.create(this.src)); await this.src.query(ITEMS.fill(this.src, itemsRows)); await this.src.query(LEDGER.create(this.src));
    this.job = await createJob(this.url, {
      name, type: 'SYNCHRONOUS', source: endpoint(this.src), destination: endpoint(this.dst), tables: [{ schema: this.schema }], parallelWorkers: 2, chunkRows: 1000,
      ...(this.dst.kind === 'mysql' ? { rename: { schemas: { [this.schema]: this.dst.database } } } : {}),
    });
    return this;
  }

  async streaming(timeoutMs = 120_000): Promise<void> {
    await waitFor(() => getJob(this.url, this.job.id), (j) => j.progress.phase === 'streaming'
      && j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.status === 'running'), timeoutMs, `${this.job.name} streaming`);
    this.writer ??= startLedger(this.src);
  }

  /**
   * Changes flow end to end again (after a fault): the ledger row the writer
   * has just committed reaches the destination. Waits on that, not on the
   * job's task states, which lag a crash (a task is still 'running' until it
   * notices the failure).
   */
  async flowing(timeoutMs = 120_000): Promise<void> {
    const want = this.writer!.last;
    await waitFor(async () => Number((await this.dst.query<{ m: number | string | null }>(`SELECT max(seq) AS m FROM ${this.dstQ('ledger')}`))[0]!.m ?? 0),
      (m) => m >= want, timeoutMs, `${this.job.name}: ledger row ${want} at the destination`);
  }

  /** Stops the writer, waits for convergence, checks the feed; returns lost/duplicated totals. */
  async finish(redisUrl: string, prefix: string): Promise<{ lost: number; duplicated: number; ledger: number; feed: FeedCheck; writerErrors: number }> {
    const last = await this.writer!.stop();
    const rows = await expectSameRows(this.src, this.dst, this.dstQ, { items: true, timeoutMs: 120_000 });
    const feed = await checkFeed(redisUrl, prefix, this.job.name, last);
    const out = { lost: rows.lost + feed.missing.length, duplicated: rows.duplicated + feed.duplicated.length, ledger: last, feed, writerErrors: this.writer!.errors };
    if (out.lost || out.duplicated) console.log(await diagnose(this, feed, last));
    expect({ missing: feed.missing.slice(0, 10), duplicated: feed.duplicated.slice(0, 10), lost: rows.lost, dup: rows.duplicated }).toEqual({ missing: [], duplicated: [], lost: 0, dup: 0 });
    const j = await getJob(this.url, this.job.id);
    expect(j.status, JSON.stringify(j.error)).toBe('RUNNING');
    await gql(this.url, `mutation { stopJob(id: "${this.job.id}") { status } }`);
    return out;
  }
}
