/**
 * `npm run demo`: a self-contained live replication. Starts private MariaDB
 * (source, row binlog), PostgreSQL (destination and Tributary's metadata) and
 * Redis, runs Tributary (gateway + workers) against them, creates a
 * synchronous MariaDB -> PostgreSQL job through GraphQL, and keeps writing
 * orders on the source so rows visibly flow. Ctrl-C stops everything and
 * removes the temporary data.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { App } from '../app.ts';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../observability/logger.ts';
import { startMariadb, startPostgres, startRedis, type PrivateServer } from './private-servers.ts';

const say = (s: string) => process.stdout.write(`${s}\n`);

export async function runDemo(port: number): Promise<void> {
  say('Starting private MariaDB (source), PostgreSQL (destination + metadata) and Redis ...');
  const servers: PrivateServer[] = await Promise.all([startMariadb({ serverId: 1 }), startPostgres(), startRedis()]);
  try {
    await demo(servers, port);
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    throw err;
  }
}

async function demo(servers: PrivateServer[], port: number): Promise<void> {
  const [maria, pgs, redis] = servers as [PrivateServer, PrivateServer, PrivateServer];
  let app: App | undefined;
  let writer: NodeJS.Timeout | undefined;
  let reporter: NodeJS.Timeout | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('\nStopping the demo ...');
    if (writer) clearInterval(writer);
    if (reporter) clearInterval(reporter);
    await app?.close().catch(() => undefined);
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    say('Demo stopped; temporary databases removed.');
    process.exit(0);
  };
  process.on('SIGINT', () => { void stop(); });
  process.on('SIGTERM', () => { void stop(); });

  const src = await mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: 'root', password: '', multipleStatements: true });
  await src.query(`CREATE DATABASE shop;
    CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(64) NOT NULL, amount DECIMAL(10,2) NOT NULL,
      status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new', note TEXT, created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
    USE shop;
    INSERT INTO shop.orders (customer, amount, note) SELECT CONCAT('customer-', seq), seq * 1.25, '🚀 seeded' FROM seq_1_to_5000;`);
  const pgAdmin = new pg.Client({ connectionString: pgs.url });
  await pgAdmin.connect();
  await pgAdmin.query('CREATE DATABASE warehouse');
  await pgAdmin.end();
  const destUrl = new URL(pgs.url); destUrl.pathname = '/warehouse';
  const metaUrl = new URL(pgs.url); metaUrl.pathname = '/tributary';

  const config = loadConfig(process.env, { port, host: '127.0.0.1', databaseUrl: metaUrl.toString(), redisUrl: redis.url, secretKey: 'demo-secret-key-not-for-production', logLevel: 'warn' } as never);
  app = new App({ config, serve: true, worker: true, logger: createLogger('warn') });
  await app.start();
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

  const dst = new pg.Pool({ connectionString: destUrl.toString(), max: 1 });
  let n = 0;
  writer = setInterval(() => {
    n++;
    const stmts = [`INSERT INTO shop.orders (customer, amount, note) VALUES ('live-${n}', ${(n % 500) + 0.99}, 'written at ${new Date().toISOString()}')`];
    if (n % 3 === 0) stmts.push(`UPDATE shop.orders SET status = 'paid' WHERE id = ${1 + (n * 7) % 5000}`);
    if (n % 10 === 0) stmts.push(`DELETE FROM shop.orders WHERE id = ${1 + (n * 13) % 5000}`);
    src.query(stmts.join(';')).catch(() => undefined);
  }, 200);
  reporter = setInterval(async () => {
    try {
      const [[s]] = (await src.query('SELECT count(*) AS n, max(id) AS m FROM shop.orders')) as unknown as [[{ n: number; m: number }]];
      const d = (await dst.query('SELECT count(*)::int AS n, max(id) AS m FROM shop.orders')).rows[0] as { n: number; m: number };
      const j = await app!.gateway!.executor<{ job: { status: string; progress: { phase: string }; metrics: { rowsApplied: number; lagMs: number | null } } }>({ query: '{ job(id: "demo-shop") { status progress { phase } metrics { rowsApplied lagMs } } }' });
      const job = j.data?.job;
      say(`source ${String(s.n).padStart(6)} rows (max id ${s.m})   destination ${String(d.n).padStart(6)} rows (max id ${d.m})   job ${job?.status} ${job?.progress.phase}, applied ${job?.metrics.rowsApplied}, lag ${job?.metrics.lagMs ?? '-'} ms`);
    } catch (err) {
      say(`(waiting for the snapshot: ${(err as Error).message})`);
    }
  }, 2000);
}
