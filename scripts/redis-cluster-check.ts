/**
 * Does Tributary run on a multi-master Redis Cluster and keep to its
 * one-slot rule? Starts a private Redis Cluster of three masters
 * (startRedisCluster: redis-server with cluster-enabled yes, formed with
 * redis-cli --cluster create), runs a real workload with Tributary configured
 * by REDIS_CLUSTER_NODES only (REDIS_URL points at a closed port), then
 * reports, for every master:
 *   - the server's error counters (INFO errorstats: CROSSSLOT, MOVED, ASK, any other),
 *   - commands with failed or rejected calls,
 *   - every key pattern left in Redis with its hash slot(s) and master(s).
 *   node bin/run-ts.js scripts/redis-cluster-check.ts
 * Workload (gateway + workers in this process, and a second worker process's
 * worth of App): the `nodes` query (SCAN of every master + GET of each
 * heartbeat), a noop task through BullMQ, a configured cluster's queue, a
 * synchronous MariaDB -> PostgreSQL job (snapshot flow, capture Lua append,
 * apply, in-flight counters, retention), `feeds` and `changes` queries, and
 * the queue dashboard's API. Exits 1 when a master counted a CROSSSLOT, MOVED
 * or ASK error, 2 when the workload failed.
 * test/integration/server/redis-cluster.test.ts checks the same in the
 * integration suite with a PostgreSQL SUBSCRIBE job and graphql-ws.
 */
import { Writable } from 'node:stream';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { App } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/observability/logger.ts';
import { startMariadb, startPostgres, startRedisCluster, type PrivateRedisCluster, type PrivateServer } from '../src/devtools/private-servers.ts';
import { createRedisClient, keySlot, masters } from '../src/store/redis-client.ts';

const say = (s: string) => process.stdout.write(`${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const servers: PrivateServer[] = [];
  let rc: PrivateRedisCluster | undefined;
  let app: App | undefined;
  let worker: App | undefined;
  let redis: Redis | undefined;
  const logLines: string[] = [];
  try {
    const [pgs, maria, cluster] = await Promise.all([startPostgres(), startMariadb({ serverId: 1 }), startRedisCluster()]);
    servers.push(pgs, maria);
    rc = cluster;
    const redisSettings = loadConfig({ REDIS_CLUSTER_NODES: rc.nodes });
    redis = createRedisClient(redisSettings);
    await redis.ping();
    const nodes = masters(redis);
    await Promise.all(nodes.map((n) => n.config('RESETSTAT')));
    const nodeName = (n: Redis) => `${n.options.host}:${n.options.port}`;
    say(`Redis Cluster (redis-server ${(await redis.info('server')).match(/redis_version:(\S+)/)?.[1]}): ${nodes.length} masters ${nodes.map(nodeName).join(', ')}, cluster_state:ok`);

    const src = await mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: 'root', password: '', multipleStatements: true });
    await src.query(`CREATE DATABASE shop; USE shop; CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(64), amount DECIMAL(10,2));
      INSERT INTO orders SELECT seq, CONCAT('row ', seq), seq / 10 FROM seq_1_to_2000;`);
    const admin = new pg.Client({ connectionString: pgs.url });
    await admin.connect(); await admin.query('CREATE DATABASE warehouse'); await admin.end();
    const meta = new URL(pgs.url); meta.pathname = '/tributary';

    const sink = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', databaseUrl: meta.toString(), redisUrl: 'redis://127.0.0.1:1', redisClusterNodes: rc.nodes, secretKey: 'cluster-check-secret-0123456789',
      logLevel: 'warn', clusters: [{ name: 'east', size: 3 }], feedMaxChanges: 1500,
    } as never);
    app = new App({ config, serve: true, worker: true, logger: createLogger('warn', sink) });
    await app.start();
    const base = `http://127.0.0.1:${app.address()!.port}`;
    const gql = async <T>(query: string, variables?: Record<string, unknown>): Promise<T> => {
      const r = await app!.gateway!.executor<T>({ query, variables });
      if (r.errors?.length) throw new Error(`GraphQL: ${r.errors[0]!.message}`);
      return r.data as T;
    };

    // A second process's heartbeat, so listing nodes reads keys of two different slots.
    worker = new App({ config, serve: false, worker: true, logger: createLogger('warn', sink) });
    await worker.start();
    const nodeList = await gql<{ nodes: { totalCount: number } }>('{ nodes { totalCount } }').catch((e: Error) => { say(`nodes query FAILED: ${e.message}`); return { nodes: { totalCount: -1 } }; });
    say(`nodes query (SCAN of every master + GET of each heartbeat): ${nodeList.nodes.totalCount} node(s)`);
    const noop = await gql<{ runNoop: { taskId: string } }>('mutation { runNoop(steps: 2, stepMs: 50) { taskId } }');
    const deadline = Date.now() + 30_000;
    for await (const e of app.services.tasks.events(noop.runNoop.taskId) as AsyncIterable<{ state: string }>) {
      if (e.state === 'completed') break;
      if (Date.now() > deadline) throw new Error('noop task not completed in 30 s');
    }
    say('noop task through BullMQ: completed');

    const job = await gql<{ createJob: { id: string } }>('mutation($i: JobInput!) { createJob(input: $i) { id } }', { i: {
      name: 'slots', type: 'SYNCHRONOUS', parallelWorkers: 2,
      source: { kind: 'MYSQL', host: '127.0.0.1', port: maria.port, user: 'root', password: '' },
      destination: { kind: 'POSTGRES', host: '127.0.0.1', port: pgs.port, user: 'postgres', password: '', database: 'warehouse' },
      tables: [{ schema: 'shop', tables: ['orders'] }],
    } });
    const jobState = () => gql<{ job: { status: string; error: string | null; progress: { phase: string }; metrics: { rowsApplied: number } } }>(`{ job(id: "${job.createJob.id}") { status error progress { phase } metrics { rowsApplied } } }`);
    for (let i = 0; ; i++) {
      const j = (await jobState()).job;
      if (j.status === 'FAILED') throw new Error(`job failed: ${j.error}`);
      if (j.progress.phase === 'streaming') break;
      if (i > 600) throw new Error(`snapshot not done: ${JSON.stringify(j)}`);
      await sleep(100);
    }
    for (let k = 0; k < 40; k++) await src.query(`UPDATE shop.orders SET amount = amount + 1 WHERE id BETWEEN ${k * 50 + 1} AND ${k * 50 + 50}`);
    const dst = new pg.Client({ connectionString: new URL('/warehouse', pgs.url).toString() });
    await dst.connect();
    for (let i = 0; ; i++) {
      const [[s]] = (await src.query('SELECT sum(amount) AS a FROM shop.orders')) as unknown as [[{ a: string }]];
      const d = (await dst.query('SELECT sum(amount) AS a FROM shop.orders')).rows[0] as { a: string };
      if (Number(s.a) === Number(d.a)) break;
      if (i > 600) throw new Error(`destination did not catch up: ${s.a} vs ${d.a}`);
      await sleep(100);
    }
    await dst.end();
    await src.end();
    say('synchronous MariaDB -> PostgreSQL job: snapshot, 2000 row changes captured and applied, destination matches');
    const feeds = await gql<{ feeds: { name: string; length: number }[] }>('{ feeds { name length firstSequence lastSequence } }');
    say(`feeds query (SCAN of feed metas, MULTI bounds per feed): ${feeds.feeds.map((f) => `${f.name} (${f.length} changes retained)`).join(', ')}`);
    const changes = await gql<{ changes: { changes: unknown[] } }>('{ changes(feed: "slots", scopes: ["none"], limit: 10) { changes { sequence } } }');
    say(`changes query on the job's feed (MULTI HGET + XRANGE): answered, ${changes.changes.changes.length} matching`);
    const dash = await fetch(`${base}/admin/queues/api/queues`);
    say(`queue dashboard API: ${dash.status}, queues ${((await dash.json()) as { queues: { name: string }[] }).queues.map((q) => q.name).join(', ')}`);
    await sleep(3000); // a retention pass and a few heartbeats

    let slotErrors = 0;
    const patterns = new Map<string, { slots: Set<number>; nodes: Set<string> }>();
    for (const node of nodes) {
      const errors = String(await node.info('errorstats')).split('\n').filter((l) => l.startsWith('errorstat_')).map((l) => l.trim());
      const failed = String(await node.info('commandstats')).split('\n')
        .filter((l) => /(?:failed|rejected)_calls=[1-9]/.test(l)).map((l) => l.trim().replace(/usec=\d+,usec_per_call=[\d.]+,/, ''));
      say(`\nmaster ${nodeName(node)}: ${await node.dbsize()} keys`);
      say(`  INFO errorstats: ${errors.length ? errors.join('; ') : 'no errors'}`);
      say(`  commands with failed or rejected calls: ${failed.length ? failed.join('; ') : 'none'}`);
      slotErrors += errors.filter((l) => /^errorstat_(CROSSSLOT|MOVED|ASK):/.test(l)).length;
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const pattern = key
            .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
            .replace(/:node:[^:]+$/, ':node:<node id>')
            .replace(/:\d+(?=$|:)/g, ':<n>');
          const p = patterns.get(pattern) ?? { slots: new Set<number>(), nodes: new Set<string>() };
          p.slots.add(keySlot(key));
          p.nodes.add(nodeName(node));
          patterns.set(pattern, p);
        }
      } while (cursor !== '0');
    }
    say('\nkey pattern -> hash slot(s) -> master(s):');
    for (const [p, { slots, nodes: on }] of [...patterns].sort()) {
      say(`  ${p}  ->  ${[...slots].slice(0, 6).join(', ')}${slots.size > 6 ? ` (+${slots.size - 6} more)` : ''}  ->  ${[...on].join(', ')}`);
    }
    const logged = logLines.filter((l) => /CROSSSLOT|MOVED|\bASK\b/.test(l));
    if (logged.length) say(`\nlog lines mentioning CROSSSLOT, MOVED or ASK: ${logged.length}; first: ${logged[0]!.slice(0, 400)}`);
    say(`\n${slotErrors ? `FAILED: ${slotErrors} slot error counter(s)` : 'ok: no CROSSSLOT, MOVED or ASK on any master'}`);
    return slotErrors ? 1 : 0;
  } finally {
    await worker?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    redis?.disconnect();
    await Promise.all([...servers.map((s) => s.stop().catch(() => undefined)), rc?.stop().catch(() => undefined)]);
  }
}

main().then((code) => process.exit(code), (err) => { process.stderr.write(`redis-cluster-check: ${(err as Error).stack}\n`); process.exit(2); });
