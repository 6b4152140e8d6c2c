/**
 * `npm run demo`: a self-contained live replication. Starts private MariaDB
 * (source, row binlog), PostgreSQL (destination and Tributary's metadata) and
 * Redis, runs Tributary (gateway + workers) against them, creates a
 * synchronous MariaDB -> PostgreSQL job through GraphQL, and keeps writing
 * orders on the source so rows visibly flow. Ctrl-C stops everything and
 * removes the temporary data.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { App } from '../app.ts';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../observability/logger.ts';
import { freePort, startMariadb, startPostgres, startRedis, type PrivateServer } from './private-servers.ts';

const say = (s: string) => process.stdout.write(`${s}\n`);

/** Ctrl-C arrived while the demo was still starting: the step in progress ends, nothing after it starts. */
class DemoInterrupted extends Error {
  override readonly name = 'DemoInterrupted';
}

/**
 * Everything the demo started, closed in reverse order, whenever Ctrl-C comes:
 * a resource is registered the moment it exists, so an interrupt during
 * startup closes exactly what is up (a server left running survived the demo).
 */
class Teardown {
  private readonly closers: (() => Promise<unknown>)[] = [];
  interrupted = false;
  add(close: () => Promise<unknown>): void { this.closers.push(close); }
  /** Throws once Ctrl-C was pressed, so startup stops at the next step. */
  check(): void { if (this.interrupted) throw new DemoInterrupted('interrupted'); }
  async run(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => undefined);
    this.closers.length = 0;
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A taken port (`npm start` running) is found before anything starts; the demo then takes a free one and says which. */
async function choosePort(port: number): Promise<number> {
  if (port === 0 || (await portFree(port))) return port;
  const other = await freePort();
  say(`Port ${port} is in use (is \`npm start\` running?): the demo listens on port ${other} instead.`);
  return other;
}

export async function runDemo(requestedPort: number): Promise<void> {
  const port = await choosePort(requestedPort);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-'));
  chmodSync(dir, 0o755); // the servers run as postgres / mysql when the demo runs as root
  const teardown = new Teardown();
  let stopping: Promise<void> | undefined;
  let main: Promise<void> = Promise.resolve();
  const stop = () => stopping ??= (async () => {
    say('\nStopping the demo ...');
    teardown.interrupted = true;
    await main.catch(() => undefined);
    await teardown.run();
    rmSync(dir, { recursive: true, force: true });
    say('Demo stopped; temporary databases removed.');
  })();
  const onSignal = () => { void stop().then(() => process.exit(0)); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  main = demo(dir, port, teardown);
  try {
    await main;
  } catch (err) {
    if (err instanceof DemoInterrupted) return; // stop() exits when everything is closed
    await stop();
    throw err;
  }
}

async function startServers(dir: string, teardown: Teardown): Promise<[PrivateServer, PrivateServer, PrivateServer]> {
  say(`Starting private MariaDB (source), PostgreSQL (destination + metadata) and Redis under ${dir} ...`);
  const started = await Promise.allSettled([startMariadb({ serverId: 1, baseDir: dir }), startPostgres({ baseDir: dir }), startRedis({ baseDir: dir })]);
  for (const r of started) if (r.status === 'fulfilled') teardown.add(() => r.value.stop());
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  teardown.check();
  return started.map((r) => (r as PromiseFulfilledResult<PrivateServer>).value) as [PrivateServer, PrivateServer, PrivateServer];
}

async function demo(dir: string, port: number, teardown: Teardown): Promise<void> {
  const [maria, pgs, redis] = await startServers(dir, teardown);
  const src = await mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: 'root', password: '', multipleStatements: true });
  src.on('error', () => undefined); // the server going away at Ctrl-C is expected
  teardown.add(() => src.end().catch(() => src.destroy()));
  teardown.check();
  await src.query(`CREATE DATABASE shop;
    CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(64) NOT NULL, amount DECIMAL(10,2) NOT NULL,
      status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new', note TEXT, created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
    USE shop;
    INSERT INTO shop.orders (customer, amount, note) SELECT CONCAT('customer-', seq), seq * 1.25, '🚀 seeded' FROM seq_1_to_5000;`);
  const pgAdmin = new pg.Client({ connectionString: pgs.url });
  pgAdmin.on('error', () => undefined);
  await pgAdmin.connect();
  try { await pgAdmin.query('CREATE DATABASE warehouse'); } finally { await pgAdmin.end().catch(() => undefined); }
  teardown.check();
  const destUrl = new URL(pgs.url); destUrl.pathname = '/warehouse';
  const metaUrl = new URL(pgs.url); metaUrl.pathname = '/tributary';

  const config = loadConfig(process.env, { port, host: '127.0.0.1', databaseUrl: metaUrl.toString(), redisUrl: redis.url, secretKey: 'demo-secret-key-not-for-production', logLevel: 'warn' } as never);
  const app = new App({ config, serve: true, worker: true, logger: createLogger('warn') });
  teardown.add(() => app.close());
  await app.start();
  teardown.check();
  const base = `http://127.0.0.1:${app.address()!.port}`;
  const res = await app.gateway!.executor<{ createJob: { id: string; name: string } }>({
    query: `mutation($i: JobInput!) { createJob(input: $i) { id name } }`,
    variables: { i: {
      name: 'demo-shop', type: 'SYNCHRONOUS', parallelWorkers: 2,
      source: { kind: 'MYSQL', host: '127.0.0.1', port: maria.port, user: 'root', password: '' },
      destination: { kind: 'POSTGRES', host: '127.0.0.1', port: pgs.port, user: 'postgres', password: '', database: 'warehouse' },
      tables: [{ schema: 'shop', tables: ['orders'] }],
    } },
  });
  if (res.errors?.length) throw new Error(`createJob failed: ${res.errors[0]!.message}`);
  teardown.check();
  const jobId = res.data!.createJob.id;

  say('');
  say(`Tributary is running at ${base}`);
  say(`  GraphiQL: ${base}/graphiql`);
  say(`  Job "demo-shop" (${jobId}) replicates MariaDB shop.orders -> PostgreSQL warehouse.shop.orders.`);
  say(`  Try in GraphiQL:  { job(id: "demo-shop") { status progress { phase percent } metrics { rowsApplied lagMs } tasks { name status } } }`);
  say(`  Watch it live:    subscription { jobEvents(id: "demo-shop") { kind status metrics { rowsApplied lagMs } } }`);
  say(`  Source:      mysql -h127.0.0.1 -P${maria.port} -uroot shop`);
  say(`  Destination: psql ${destUrl.toString()}`);
  say('A writer inserts, updates and deletes orders on the source every 200 ms. Ctrl-C stops the demo.');
  say('');

  // An idle pooled client whose server stops emits 'error'; without a listener that crashed the demo at Ctrl-C.
  const dst = new pg.Pool({ connectionString: destUrl.toString(), max: 1 });
  dst.on('error', () => undefined);
  teardown.add(() => dst.end());
  let n = 0;
  const writer = setInterval(() => {
    n++;
    const stmts = [`INSERT INTO shop.orders (customer, amount, note) VALUES ('live-${n}', ${(n % 500) + 0.99}, 'written at ${new Date().toISOString()}')`];
    if (n % 3 === 0) stmts.push(`UPDATE shop.orders SET status = 'paid' WHERE id = ${1 + (n * 7) % 5000}`);
    if (n % 10 === 0) stmts.push(`DELETE FROM shop.orders WHERE id = ${1 + (n * 13) % 5000}`);
    src.query(stmts.join(';')).catch(() => undefined);
  }, 200);
  const reporter = setInterval(async () => {
    try {
      const [[s]] = (await src.query('SELECT count(*) AS n, max(id) AS m FROM shop.orders')) as unknown as [[{ n: number; m: number }]];
      const d = (await dst.query('SELECT count(*)::int AS n, max(id) AS m FROM shop.orders')).rows[0] as { n: number; m: number };
      const j = await app.gateway!.executor<{ job: { status: string; progress: { phase: string }; metrics: { rowsApplied: number; lagMs: number | null } } }>({ query: '{ job(id: "demo-shop") { status progress { phase } metrics { rowsApplied lagMs } } }' });
      const job = j.data?.job;
      say(`source ${String(s.n).padStart(6)} rows (max id ${s.m})   destination ${String(d.n).padStart(6)} rows (max id ${d.m})   job ${job?.status} ${job?.progress.phase}, applied ${job?.metrics.rowsApplied}, lag ${job?.metrics.lagMs ?? '-'} ms`);
    } catch (err) {
      say(`(waiting for the snapshot: ${(err as Error).message})`);
    }
  }, 2000);
  teardown.add(async () => { clearInterval(writer); clearInterval(reporter); });
}
