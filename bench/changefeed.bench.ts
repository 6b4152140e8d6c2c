/**
 * Change feed delivery (issue 4), on private PostgreSQL and Redis with a real
 * in-process App (gateway + workers) and a SUBSCRIBE job capturing a table:
 *   - latency: commit-to-subscriber p50/p99 with 1,000 graphql-ws
 *     subscribers while the source commits 1,000 changes/s (10 rows per
 *     transaction every 10 ms). Each subscriber follows its own scope (one
 *     tenant each, round-robin), so each receives 1 change/s and every change
 *     is delivered once: 1k messages/s in all. A change carries its send
 *     time (taken just before its INSERT), so latency = receipt - send time.
 *     Peer: PostGraphile 4 live queries (@graphile/subscriptions-lds), right
 *     after, alone, on the same PostgreSQL (bench/support/postgraphile-peer.ts:
 *     its own database, PostGraphile in a child process, the same clients,
 *     writer and measure). LDS needs the wal2json output plugin (Debian
 *     postgresql-15-wal2json): without it the peer is reported as not
 *     measured, with the reason.
 *   - fan-out: 200 graphql-ws subscribers on one scope, 1,000 changes in one
 *     transaction: delivered messages/s from the commit to the last receipt.
 *   - long poll: 10,000 concurrent changeserver long polls (GET
 *     /feeds/{name}/changes?block=60) from a child process, on a feed written
 *     directly (no capture in the path); gateway RSS growth while they wait,
 *     time from the append until every waiter is released by the feed's tail
 *     watcher, and until the last answer is received.
 * Clients of the first two run in this process (their JSON parsing shares the
 * two cores with the gateway). Run alone: `node bin/run-ts.js bench/changefeed.bench.ts`.
 */
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startPostgres, startRedis, type PrivateServer } from '../src/devtools/private-servers.ts';
import { Operation, type CapturedTransaction } from '../src/replication/change-event.ts';
import { makeSequence, parseSequence } from '../src/replication/sequence.ts';
import { RedisChangeFeed } from '../src/replication/feed/redis-change-feed.ts';
import { createJob, createPgDb, endpoint, sleep, startGateway, waitJob, type BenchGateway, type BenchResult, type PgDb } from './support/harness.ts';
import { postgraphilePeer, type PeerResult } from './support/postgraphile-peer.ts';

const SUBSCRIBERS = 1000;
const RATE = 1000;
const WRITE_SECONDS = 10;
const FANOUT_SUBSCRIBERS = 200;
const FANOUT_CHANGES = 1000;
const WAITERS = 10_000;

const SUB = `subscription($feed: String!, $scopes: [String!]!, $since: String) { changes(feed: $feed, scopes: $scopes, since: $since) { sequence newRow } }`;
const now = () => performance.timeOrigin + performance.now();
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
const r1 = (x: number) => Math.round(x * 10) / 10;

function clients(gw: BenchGateway, n: number): Client[] {
  return Array.from({ length: n }, () => createClient({ url: gw.url.replace('http', 'ws') + '/graphql', webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 }));
}

async function tailOf(gw: BenchGateway, feed: string): Promise<string> {
  const res = await fetch(`${gw.url}/feeds/${feed}/changes?scope=none&limit=1`);
  return ((await res.json()) as { lastSequence: string }).lastSequence;
}

async function latency(gw: BenchGateway, db: PgDb, feed: string) {
  const cs = clients(gw, SUBSCRIBERS);
  const samples: number[] = [];
  let received = 0;
  const since = await tailOf(gw, feed);
  const stops = cs.map((c, i) => c.subscribe<{ changes: { newRow: { sent: number } } }>({ query: SUB, variables: { feed, scopes: [`t${i}`], since } }, {
    next: (m) => { if (m.data) { samples.push(now() - Number(m.data.changes.newRow.sent)); received++; } },
    error: () => undefined, complete: () => undefined,
  }));
  await waitSubscribers(gw, SUBSCRIBERS);
  const total = RATE * WRITE_SECONDS;
  const perTx = 10;
  const t0 = now();
  let id = 0;
  for (let tick = 0; id < total; tick++) {
    const due = t0 + tick * (1000 * perTx) / RATE;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    const rows: string[] = [];
    const sent = now();
    for (let k = 0; k < perTx; k++, id++) rows.push(`(${id}, ${sent}, 't${id % SUBSCRIBERS}')`);
    await db.q(`INSERT INTO ev (id, sent, _change_selector) VALUES ${rows.join(',')}`);
  }
  const writeSeconds = (now() - t0) / 1000;
  const deadline = Date.now() + 60_000;
  while (received < total && Date.now() < deadline) await sleep(50);
  for (const s of stops) s();
  await Promise.all(cs.map((c) => c.dispose()));
  samples.sort((a, b) => a - b);
  return { p50: pct(samples, 0.5), p99: pct(samples, 0.99), max: samples.at(-1) ?? NaN, received, total, rate: total / writeSeconds };
}

async function waitSubscribers(gw: BenchGateway, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (gw.app.services.changes.subscribers < n) {
    if (Date.now() > deadline) throw new Error(`only ${gw.app.services.changes.subscribers} of ${n} subscribers registered`);
    await sleep(50);
  }
}

async function fanout(gw: BenchGateway, db: PgDb, feed: string) {
  const cs = clients(gw, FANOUT_SUBSCRIBERS);
  let delivered = 0;
  let lastAt = 0;
  const since = await tailOf(gw, feed);
  const stops = cs.map((c) => c.subscribe({ query: SUB, variables: { feed, scopes: ['fan'], since } }, {
    next: () => { delivered++; lastAt = now(); }, error: () => undefined, complete: () => undefined,
  }));
  await waitSubscribers(gw, FANOUT_SUBSCRIBERS);
  const t0 = now();
  await db.q(`INSERT INTO ev (id, sent, _change_selector) SELECT 10000000 + g, 0, 'fan' FROM generate_series(1, ${FANOUT_CHANGES}) g`);
  const want = FANOUT_SUBSCRIBERS * FANOUT_CHANGES;
  const deadline = Date.now() + 120_000;
  while (delivered < want && Date.now() < deadline) await sleep(20);
  for (const s of stops) s();
  await Promise.all(cs.map((c) => c.dispose()));
  const seconds = (lastAt - t0) / 1000;
  return { delivered, want, seconds, rate: delivered / seconds };
}

/** The child process: opens `n` long polls in waves and reports when they are sent and when each was answered. */
const CHILD = `
const http = require('node:http');
const [url, n] = [process.argv[1], Number(process.argv[2])];
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
let done = 0, ok = 0, first = Infinity, last = 0, opened = 0, resets = 0; const statuses = {};
const now = () => performance.timeOrigin + performance.now();
function poll() {
  http.get(url, { agent }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => { body += d; });
    res.on('end', () => {
      const t = now(); first = Math.min(first, t); last = Math.max(last, t); statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
      try { if (res.statusCode === 200 && JSON.parse(body).changes.length === 1) ok++; } catch {}
      if (++done === n) { process.stdout.write(JSON.stringify({ ok, first, last, resets, statuses }) + '\\n'); process.exit(0); }
    });
  }).on('error', () => { resets++; setTimeout(poll, 50); }); // a reset while connecting (listen backlog full): try again
}
(async () => {
  while (opened < n) {
    for (let i = 0; i < 250 && opened < n; i++, opened++) poll();
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write('sent\\n');
})();
`;

async function longPoll(gw: BenchGateway, redisUrl: string) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl);
  const name = 'lpbench';
  const feed = new RedisChangeFeed({ redis, name, prefix: (gw.app as unknown as { opts: { config: { queuePrefix: string } } }).opts.config.queuePrefix });
  let n = 0;
  const tx = (scope: string): CapturedTransaction => {
    n++;
    const commitTime = Date.now();
    return {
      txid: String(n), commitSequence: String(n * 256), commitTime, resume: { kind: 'postgres', lsn: `0/${(n * 256 + 128).toString(16)}` },
      events: [{ source: 'postgres', sequence: makeSequence(0, n * 256, 0), txid: String(n), commitSequence: String(n * 256), index: 0, op: Operation.Insert,
        schema: 'public', table: 'lp', key: ['id'], before: null, after: { id: n, _change_selector: scope }, columns: [{ name: 'id', kind: 'int', sourceType: 'integer' }, { name: '_change_selector', kind: 'text', sourceType: 'text' }], commitTime, scope }],
    } as unknown as CapturedTransaction;
  };
  await feed.append(tx('other'));
  const since = makeSequence(0, n * 256, 0);
  parseSequence(since);
  const watcher = () => (gw.app.services.changes as unknown as { feeds: Map<string, { watcher: { waiting: number } }> }).feeds.get(name)?.watcher;
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const child = spawn(process.execPath, ['-e', CHILD, `${gw.url}/feeds/${name}/changes?scope=w&since=${since}&block=60`, String(WAITERS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const result = new Promise<{ ok: number; first: number; last: number; resets: number }>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { out += d; const line = out.split('\n').find((l) => l.startsWith('{')); if (line) resolve(JSON.parse(line)); });
    child.on('exit', (code) => { if (!out.includes('{')) reject(new Error(`long-poll client exited ${code}`)); });
  });
  // Up to 3 minutes to park them all; on an overloaded machine the figures are for those parked by then.
  const deadline = Date.now() + 180_000;
  while ((watcher()?.waiting ?? 0) < WAITERS && Date.now() < deadline) await sleep(100);
  const parked = watcher()?.waiting ?? 0;
  const rssWaiting = process.memoryUsage().rss;
  const t0 = now();
  await feed.append(tx('w'));
  let released = NaN;
  while (Number.isNaN(released)) {
    if (watcher()!.waiting === 0) released = now() - t0;
    else await new Promise((r) => setImmediate(r));
  }
  const r = await Promise.race([result, sleep(120_000).then(() => ({ ok: NaN, first: NaN, last: NaN, resets: NaN }))]);
  child.kill();
  await feed.destroy();
  await feed.close();
  redis.disconnect();
  return { parked, rssBefore, rssWaiting, released, firstAnswer: r.first - t0, lastAnswer: r.last - t0, ok: r.ok, resets: r.resets };
}

export async function run(): Promise<BenchResult[]> {
  let pgs: PrivateServer | undefined; let redis: PrivateServer | undefined; let gw: BenchGateway | undefined; let db: PgDb | undefined;
  try {
    [pgs, redis] = await Promise.all([startPostgres(), startRedis()]);
    // All clients come from 127.0.0.1 without a token: the per-address rate limit (RATE_LIMIT_PER_SECOND, 100/s) is
    // off here, and MAX_LONG_POLL_WAITERS (1000) is raised to the 10,000 polls this measures.
    gw = await startGateway(pgs, redis, 8, { rateLimitPerSecond: 0, maxLongPollWaiters: WAITERS });
    db = await createPgDb(pgs, 'cfbench');
    await db.q(`CREATE TABLE ev (id bigint PRIMARY KEY, sent double precision, _change_selector text)`);
    const feed = 'cfbench';
    const job = await createJob(gw.url, { name: feed, type: 'SUBSCRIBE', source: endpoint('POSTGRES', pgs.port, db.name), tables: [{ schema: 'public' }] });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'capture streaming');

    const log = (m: string) => process.stderr.write(`changefeed bench: ${m}\n`);
    // Each phase alone, so one that cannot finish on a loaded machine does not hide the others' figures.
    const phase = async <T>(name: string, fn: () => Promise<T>, failed: T): Promise<T> => {
      log(`${name} ...`);
      try { const r = await fn(); log(`${name}: ${JSON.stringify(r)}`); return r; } catch (err) { log(`${name} failed: ${(err as Error).message}`); return failed; }
    };
    const lat = await phase('latency', () => latency(gw!, db!, feed), { p50: NaN, p99: NaN, max: NaN, received: 0, total: RATE * WRITE_SECONDS, rate: NaN });
    await sleep(10_000); // let the previous phase's subscriptions wind down
    // The peer, alone: its own database (Tributary's capture of cfbench stays idle), PostGraphile in a child process.
    const peer: PeerResult = await phase('peer (PostGraphile live queries)', () => postgraphilePeer(pgs!, { subscribers: SUBSCRIBERS, rate: RATE, seconds: WRITE_SECONDS, log }),
      { measured: false, reason: 'the peer phase failed (see the log)' });
    await sleep(10_000);
    const fan = await phase('fan-out', () => fanout(gw!, db!, feed), { delivered: 0, want: FANOUT_SUBSCRIBERS * FANOUT_CHANGES, seconds: NaN, rate: NaN });
    await sleep(10_000);
    const lp = await phase('long poll', () => longPoll(gw!, redis!.url), { parked: 0, rssBefore: NaN, rssWaiting: NaN, released: NaN, firstAnswer: NaN, lastAnswer: NaN, ok: NaN, resets: NaN });
    const mib = (b: number) => Math.round(b / 2 ** 20);
    return [
      {
        name: 'changefeed-latency',
        metrics: {
          subscribers: SUBSCRIBERS, 'changes/s offered': RATE, 'changes/s achieved': Math.round(lat.rate), 'delivered / expected': `${lat.received} / ${lat.total}`,
          'p50 ms': r1(lat.p50), 'p99 ms': r1(lat.p99), 'max ms': r1(lat.max),
          ...(peer.measured
            ? {
              'PostGraphile delivered / expected': `${peer.received} / ${peer.total}`, 'PostGraphile changes/s achieved': Math.round(peer.rate),
              'PostGraphile p50 ms': r1(peer.p50), 'PostGraphile p99 ms': r1(peer.p99), 'PostGraphile max ms': r1(peer.max),
              'Tributary p99 / PostGraphile p99': +(lat.p99 / peer.p99).toFixed(3),
            }
            : { 'PostGraphile p99 ms': 'not measured', 'Tributary p99 / PostGraphile p99': 'not measured' }),
        },
        ratio: { label: 'p99 ms / 25 ms target', value: +(lat.p99 / 25).toFixed(3) },
        target: 'p99 ≤ 25 ms (ratio ≤ 1)',
        notes: `Commit-to-subscriber latency includes capture (logical replication), the feed append and graphql-ws delivery. ${peer.measured
          ? `Peer: PostGraphile live queries (${peer.versions}; ${peer.settings}) in a child process, measured right after Tributary, alone, on the same PostgreSQL (own database, same \`ev\` table plus an index on \`_change_selector\`, LDS on a temporary wal2json slot): the same ${SUBSCRIBERS} graphql-ws clients, each a live query \`allEvs(condition: {_changeSelector: "t<i>"})\`, and the same writer; a live query re-sends its whole result set (${peer.updates} updates), and only rows new to a subscriber count. PostGraphile used ${r1(peer.serverCpuSeconds)} CPU s from the first write to the last receipt.`
          : `Peer not measured: ${peer.reason.replace(/\.?$/, '.')} Tributary's figures are reported alone.`}`,
      },
      {
        name: 'changefeed-fanout',
        metrics: { subscribers: FANOUT_SUBSCRIBERS, changes: FANOUT_CHANGES, 'delivered / expected': `${fan.delivered} / ${fan.want}`, seconds: +fan.seconds.toFixed(2), 'delivered messages/s': Math.round(fan.rate) },
        ratio: { label: 'messages/s / 100k target', value: +(fan.rate / 100_000).toFixed(3) },
        target: '≥ 100,000 messages/s (ratio ≥ 1)',
        notes: 'Timed from the source commit (one 1,000-row transaction) to the last message received; subscribers are graphql-ws clients in the benchmark process.',
      },
      {
        name: 'changefeed-longpoll',
        metrics: {
          'waiters opened': WAITERS, 'waiters parked': lp.parked, 'answered with the change': lp.ok, 'gateway RSS before (MiB)': mib(lp.rssBefore), 'gateway RSS with waiters (MiB)': mib(lp.rssWaiting),
          'RSS growth per waiter (KiB)': +((lp.rssWaiting - lp.rssBefore) / 1024 / Math.max(1, lp.parked)).toFixed(1), 'all released (ms)': r1(lp.released),
          'first answer (ms)': r1(lp.firstAnswer), 'last answer (ms)': r1(lp.lastAnswer), 'connection resets retried': lp.resets,
        },
        ratio: { label: 'all-released ms / 100 ms target', value: +(lp.released / 100).toFixed(3) },
        target: 'woken < 100 ms (ratio < 1), RSS < 1 GiB',
        notes: 'Waiters are HTTP long polls from a child process on a feed appended to directly (no capture in the path). "All released" is the time from the append until the tail watcher\'s one XREAD has released every waiter; each then re-reads the feed and answers through the GraphQL executor, which the answer times include.',
      },
    ];
  } finally {
    await gw?.close().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    await pgs?.stop().catch(() => undefined);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => { console.log(JSON.stringify(r, null, 2)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
