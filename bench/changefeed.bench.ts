/**
 * Change feed delivery (issue 4), on private PostgreSQL and Redis with a real
 * in-process App (gateway + workers) and a SUBSCRIBE job capturing a table:
 *   - latency: commit-to-subscriber p50/p99 with 1,000 graphql-ws
 *     subscribers while the source commits 1,000 changes/s (10 rows per
 *     transaction every 10 ms). Each subscriber follows its own scope (one
 *     tenant each, round-robin), so each receives 1 change/s and every change
 *     is delivered once: 1k messages/s in all. A change carries its send
 *     time (taken just before its INSERT), so latency = receipt - send time.
 *     The writer commits with synchronous_commit=on (the private server's
 *     default is off, and then logical decoding sees a commit only after the
 *     WAL writer's next flush, up to wal_writer_delay = 200 ms later: a
 *     server setting, not a property of either system); the peer's writer too.
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
 *     time from the append until every waiter is released by the feed's hub,
 *     and until the last answer is received.
 * The latency clients run in this process (1 message/s each); the fan-out
 * and long-poll clients in a child process, so their parsing does not share
 * the gateway's event loop. Run alone: `node bin/run-ts.js bench/changefeed.bench.ts`.
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
const WAITERS = Number(process.env.BENCH_CF_WAITERS ?? 10_000);
const LP_BLOCK = Number(process.env.BENCH_CF_BLOCK ?? 60);

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
    await db.q(`SET synchronous_commit = on; INSERT INTO ev (id, sent, _change_selector) VALUES ${rows.join(',')}`);
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

/** The fan-out child: `n` graphql-ws connections (the protocol by hand over `ws`), one subscription each; counts `next` messages. */
const FANOUT_CHILD = `
const WebSocket = require('ws');
const [url, n, want, payload] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const now = () => performance.timeOrigin + performance.now();
let acked = 0, delivered = 0, lastAt = 0, bad = 0; const sockets = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url, 'graphql-transport-ws');
  sockets.push(ws);
  ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
  ws.on('message', (d) => {
    const m = JSON.parse(d);
    if (m.type === 'next') { if (m.payload && m.payload.data) delivered++; else bad++; lastAt = now();
      if (delivered === want) { process.stdout.write(JSON.stringify({ delivered, lastAt, bad }) + '\\n'); setTimeout(() => process.exit(0), 100); } }
    else if (m.type === 'connection_ack') { ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: JSON.parse(payload) })); if (++acked === n) process.stdout.write('ready\\n'); }
    else if (m.type === 'error') bad++;
  });
  ws.on('error', () => { bad++; });
}
process.stdin.on('data', () => { process.stdout.write(JSON.stringify({ delivered, lastAt, bad }) + '\\n'); setTimeout(() => process.exit(0), 100); });
`;

async function fanout(gw: BenchGateway, db: PgDb, feed: string) {
  const since = await tailOf(gw, feed);
  const want = FANOUT_SUBSCRIBERS * FANOUT_CHANGES;
  const payload = JSON.stringify({ query: SUB, variables: { feed, scopes: ['fan'], since } });
  const child = spawn(process.execPath, ['-e', FANOUT_CHILD, gw.url.replace('http', 'ws') + '/graphql', String(FANOUT_SUBSCRIBERS), String(want), payload], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  const lines = (): string[] => out.split('\n');
  child.stdout.on('data', (d: string) => { out += d; });
  try {
    const until = async (p: () => boolean, ms: number, what: string) => {
      const deadline = Date.now() + ms;
      while (!p()) { if (Date.now() > deadline) throw new Error(`fan-out child: no ${what} within ${ms} ms`); await sleep(20); }
    };
    await until(() => lines().includes('ready'), 60_000, 'ready');
    await waitSubscribers(gw, FANOUT_SUBSCRIBERS);
    const t0 = now();
    await db.q(`INSERT INTO ev (id, sent, _change_selector) SELECT 10000000 + g, 0, 'fan' FROM generate_series(1, ${FANOUT_CHANGES}) g`);
    const report = () => lines().find((l) => l.startsWith('{'));
    await until(() => !!report(), 120_000, 'report').catch(async () => { child.stdin.write('report\n'); await until(() => !!report(), 5000, 'final report'); });
    const r = JSON.parse(report()!) as { delivered: number; lastAt: number; bad: number };
    const seconds = (r.lastAt - t0) / 1000;
    return { delivered: r.delivered, want, seconds, rate: r.delivered / seconds, bad: r.bad };
  } finally {
    child.kill();
  }
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
      if (done === 0) process.stderr.write('long-poll child: first answer ' + res.statusCode + ' ' + body.slice(0, 300) + '\\n');
      if (++done === n) { process.stdout.write(JSON.stringify({ ok, first, last, resets, statuses }) + '\\n'); process.exit(0); }
    });
  }).on('error', () => { resets++; setTimeout(poll, 50); }); // a reset while connecting (listen backlog full): try again
}
(async () => {
  while (opened < n) {
    for (let i = 0; i < 100 && opened < n; i++, opened++) poll(); // 1,000/s: a faster burst overflows the listen backlog
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
  const parkedNow = () => gw.app.services.changes.parkedOn(name);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const child = spawn(process.execPath, ['-e', CHILD, `${gw.url}/feeds/${name}/changes?scope=w&since=${since}&block=${LP_BLOCK}`, String(WAITERS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const result = new Promise<{ ok: number; first: number; last: number; resets: number; statuses: Record<string, number> }>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { out += d; const line = out.split('\n').find((l) => l.startsWith('{')); if (line) resolve(JSON.parse(line)); });
    child.on('exit', (code) => { if (!out.includes('{')) reject(new Error(`long-poll client exited ${code}`)); });
  });
  // Up to 3 minutes to park them all; on an overloaded machine the figures are for those parked by then.
  const deadline = Date.now() + 180_000;
  const parkStart = Date.now();
  let lastLog = 0;
  while (parkedNow() < WAITERS && Date.now() < deadline) {
    await sleep(100);
    if (Date.now() - lastLog > 5000) { lastLog = Date.now(); process.stderr.write(`long poll: ${parkedNow()} parked after ${Date.now() - parkStart} ms\n`); }
  }
  process.stderr.write(`long poll: ${parkedNow()} parked after ${Date.now() - parkStart} ms\n`);
  const parked = parkedNow();
  const rssWaiting = process.memoryUsage().rss;
  const t0 = now();
  await feed.append(tx('w'));
  // Woken: the hub's one read handed the change to every parked waiter (their promises resolved in that dispatch).
  const hub = gw.app.services.changes.hubOf(name)!;
  while (hub.lastDispatch.at < t0 || parkedNow() > 0) await new Promise((r) => setImmediate(r));
  const released = hub.lastDispatch.at - t0;
  const wokenTogether = hub.lastDispatch.members;
  const r = await Promise.race([result, sleep(120_000).then(() => ({ ok: NaN, first: NaN, last: NaN, resets: NaN, statuses: {} as Record<string, number> }))]);
  child.kill();
  await feed.destroy();
  await feed.close();
  redis.disconnect();
  return { parked, wokenTogether, rssBefore, rssWaiting, released, firstAnswer: r.first - t0, lastAnswer: r.last - t0, ok: r.ok, resets: r.resets, statuses: JSON.stringify(r.statuses) };
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
    // BENCH_CF_PHASES=latency,peer,fan-out,long (name prefixes) runs only those (for development; the others report NaN).
    const only = process.env.BENCH_CF_PHASES?.split(',').map((x) => x.trim()).filter(Boolean);
    const phase = async <T>(name: string, fn: () => Promise<T>, failed: T): Promise<T> => {
      if (only && !only.some((o) => name.startsWith(o))) { log(`${name}: skipped (BENCH_CF_PHASES)`); return failed; }
      log(`${name} ...`);
      try { const r = await fn(); log(`${name}: ${JSON.stringify(r)}`); return r; } catch (err) { log(`${name} failed: ${(err as Error).message}`); return failed; }
    };
    const lat = await phase('latency', () => latency(gw!, db!, feed), { p50: NaN, p99: NaN, max: NaN, received: 0, total: RATE * WRITE_SECONDS, rate: NaN });
    await sleep(10_000); // let the previous phase's subscriptions wind down
    // The peer, alone: its own database (Tributary's capture of cfbench stays idle), PostGraphile in a child process.
    const peer: PeerResult = await phase('peer (PostGraphile live queries)', () => postgraphilePeer(pgs!, { subscribers: SUBSCRIBERS, rate: RATE, seconds: WRITE_SECONDS, log }),
      { measured: false, reason: 'the peer phase failed (see the log)' });
    await sleep(10_000);
    const fan = await phase('fan-out', () => fanout(gw!, db!, feed), { delivered: 0, want: FANOUT_SUBSCRIBERS * FANOUT_CHANGES, seconds: NaN, rate: NaN, bad: NaN });
    await sleep(10_000);
    const lp = await phase('long poll', () => longPoll(gw!, redis!.url), { parked: 0, wokenTogether: 0, rssBefore: NaN, rssWaiting: NaN, released: NaN, firstAnswer: NaN, lastAnswer: NaN, ok: NaN, resets: NaN, statuses: '' });
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
        notes: 'Timed from the source commit (one 1,000-row transaction) to the last message received; subscribers are graphql-ws connections in a child process (each message parsed).',
      },
      {
        name: 'changefeed-longpoll',
        metrics: {
          'waiters opened': WAITERS, 'waiters parked': lp.parked, 'woken by one dispatch': lp.wokenTogether, 'answered with the change': lp.ok, 'gateway RSS before (MiB)': mib(lp.rssBefore), 'gateway RSS with waiters (MiB)': mib(lp.rssWaiting),
          'RSS growth per waiter (KiB)': +((lp.rssWaiting - lp.rssBefore) / 1024 / Math.max(1, lp.parked)).toFixed(1), 'append to all woken (ms)': r1(lp.released),
          'first answer (ms)': r1(lp.firstAnswer), 'last answer (ms)': r1(lp.lastAnswer), 'connection resets retried': lp.resets,
        },
        ratio: { label: 'append-to-all-woken ms / 100 ms target', value: +(lp.released / 100).toFixed(3) },
        target: 'woken < 100 ms (ratio < 1), RSS < 1 GiB',
        notes: 'Waiters are HTTP long polls from a child process on a feed appended to directly (no capture in the path). "Append to all woken" is the time from the append until the feed hub\'s one read has handed the change to every parked waiter (one dispatch resolves them all); each then answers through the GraphQL executor (sharing one bounds read), which the answer times include.',
      },
    ];
  } finally {
    const step = async (what: string, fn: () => Promise<unknown> | undefined) => {
      const t = Date.now();
      await fn()?.catch(() => undefined);
      process.stderr.write(`changefeed bench: ${what} closed in ${Date.now() - t} ms\n`);
    };
    await step('gateway', () => gw?.close());
    await step('database', () => db?.close());
    await step('redis', () => redis?.stop());
    await step('postgres', () => pgs?.stop());
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => { console.log(JSON.stringify(r, null, 2)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
