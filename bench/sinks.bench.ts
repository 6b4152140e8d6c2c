/**
 * Sink throughput, each against a peer in the same run, on a private Redis
 * (the feed) and a private nats-server -js:
 *   - NATS: the sink runner (replication/sinks/sink-runner.ts with the NATS
 *     module: feed read, encoding, lanes by key, Nats-Msg-Id, waiting for every
 *     ack before the checkpoint) against a raw `nats` client publishing the
 *     same message bodies with the same Nats-Msg-Ids and waiting for the acks,
 *     256 in flight (the sink's own window), into a stream of its own.
 *   - webhook: the sink runner with the webhook module, 100 changes per
 *     request, to an HTTP receiver in a child process that answers 200.
 * The checkpoint callback keeps the position in memory: the sink task adds one
 * PostgreSQL UPDATE per batch (500 changes) to this.
 * Run alone: `node bin/run-ts.js bench/sinks.bench.ts` (prints JSON), or call run().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { connect, headers, nanos } from 'nats';
import { freePort, startRedis } from '../src/devtools/private-servers.ts';
import { DEFAULT_DELIVERY, messageId, SinkFormat } from '../src/domain/sink-model.ts';
import { Operation, type CapturedTransaction, type ChangeEvent } from '../src/replication/change-event.ts';
import { RedisChangeFeed } from '../src/replication/feed/redis-change-feed.ts';
import { makeSequence } from '../src/replication/sequence.ts';
import { encodeChange } from '../src/replication/sinks/formats/sink-formats.ts';
import { NatsSink, natsConfigSchema } from '../src/replication/sinks/nats.sink.ts';
import { runSink } from '../src/replication/sinks/sink-runner.ts';
import type { Sink } from '../src/replication/sinks/sink.ts';
import { WebhookSink, webhookConfigSchema } from '../src/replication/sinks/webhook.sink.ts';

export interface BenchResult { name: string; metrics: Record<string, number | string>; ratio?: { label: string; value: number }; target?: string; notes?: string }

const NATS_CHANGES = Number(process.env.SINK_BENCH_NATS ?? 30_000);
const HOOK_CHANGES = Number(process.env.SINK_BENCH_WEBHOOK ?? 50_000);
const KEYS = 1000;

async function fillFeed(feed: RedisChangeFeed, n: number): Promise<ChangeEvent[]> {
  const all: ChangeEvent[] = [];
  for (let t = 0; t * 10 < n; t++) {
    const commitTime = Date.now();
    const events: ChangeEvent[] = Array.from({ length: Math.min(10, n - t * 10) }, (_, i) => {
      const id = ((t * 10 + i) % KEYS) + 1;
      return {
        source: 'postgres', sequence: makeSequence(0, t + 1, i), txid: String(t + 1), commitSequence: String(t + 1), index: i, op: Operation.Update,
        schema: 'public', table: 'orders', key: ['id'], before: { id, status: 'paid', amount: '12.50' }, after: { id, status: 'shipped', amount: '12.50' },
        columns: [{ name: 'id', kind: 'int', sourceType: 'bigint' }, { name: 'status', kind: 'text', sourceType: 'text' }, { name: 'amount', kind: 'decimal', sourceType: 'numeric(12,2)' }],
        commitTime,
      };
    });
    const tx: CapturedTransaction = { txid: String(t + 1), commitSequence: String(t + 1), commitTime, resume: { kind: 'postgres', lsn: `0/${(t + 1).toString(16)}` }, events };
    await feed.append(tx);
    all.push(...events);
  }
  return all;
}

/** Changes per second the runner delivers `feed` through `sink` until its checkpoint reaches `last`. */
async function runnerRate(feed: RedisChangeFeed, sink: Sink, last: string, count: number): Promise<number> {
  const controller = new AbortController();
  const t0 = performance.now();
  let t1 = 0;
  await runSink({
    feed, sink, format: SinkFormat.Json, tables: [], delivery: { ...DEFAULT_DELIVERY, lingerMs: 0 }, position: null, signal: controller.signal,
    blockedKeys: async () => new Set(), deadLetter: async () => { throw new Error('nothing should be dead-lettered'); },
    checkpoint: async (p) => { if (p.position === last) { t1 = performance.now(); controller.abort(); } },
  });
  await sink.close();
  return Math.round(count / ((t1 - t0) / 1000));
}

async function startNats(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-nats-'));
  const child: ChildProcess = spawn('/usr/sbin/nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `nats://127.0.0.1:${port}`, stop: async () => { const e = once(child, 'exit'); child.kill('SIGKILL'); await e; rmSync(dir, { recursive: true, force: true }); } };
}

/** The same messages (body, subject, Nats-Msg-Id) published with a raw client, `window` acks awaited at a time. */
async function rawNatsRate(url: string, feedName: string, events: ChangeEvent[], window: number): Promise<number> {
  const nc = await connect({ servers: url });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: 'RAW', subjects: ['raw.>'], duplicate_window: nanos(600_000) });
  const js = nc.jetstream({ timeout: 5000 });
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += window) {
    await Promise.all(events.slice(i, i + window).map((e) => {
      const id = messageId(feedName, e.sequence);
      const h = headers(); h.set('Content-Type', 'application/json');
      return js.publish(`raw.${e.schema}.${e.table}`, encodeChange(SinkFormat.Json, e, id, feedName), { msgID: id, headers: h });
    }));
  }
  const rate = Math.round(events.length / ((performance.now() - t0) / 1000));
  await nc.close();
  return rate;
}

async function startReceiver(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const code = `require('node:http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('ok'))}).listen(${port},'127.0.0.1',()=>console.log('up'))`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return { url: `http://127.0.0.1:${port}/hook`, stop: async () => { const e = once(child, 'exit'); child.kill('SIGKILL'); await e; } };
}

export async function run(): Promise<BenchResult[]> {
  const load0 = os.loadavg()[0]!.toFixed(2);
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url);
  const nats = await startNats();
  const receiver = await startReceiver();
  try {
    const natsFeed = new RedisChangeFeed({ redis, name: 'bench-sink-nats' });
    const natsEvents = await fillFeed(natsFeed, NATS_CHANGES);
    const raw = await rawNatsRate(nats.url, natsFeed.name, natsEvents, 256);
    const natsSink = new NatsSink(natsConfigSchema.parse({ servers: nats.url, subject: 'sink', stream: 'SINK' }), {});
    const sinkRate = await runnerRate(natsFeed, natsSink, natsEvents.at(-1)!.sequence, natsEvents.length);

    const hookFeed = new RedisChangeFeed({ redis, name: 'bench-sink-hook' });
    const hookEvents = await fillFeed(hookFeed, HOOK_CHANGES);
    const hook = new WebhookSink(webhookConfigSchema.parse({ url: receiver.url, batchSize: 100 }), {}, SinkFormat.Json);
    const hookRate = await runnerRate(hookFeed, hook, hookEvents.at(-1)!.sequence, hookEvents.length);
    const load1 = os.loadavg()[0]!.toFixed(2);
    const underLoad = `Taken on the shared 2-core machine under load: 1-minute load average ${load0} before, ${load1} after.`;
    return [
      {
        name: 'sink NATS JetStream (sink runner vs raw nats client with acks)',
        metrics: { changes: natsEvents.length, 'sink changes/s': sinkRate, 'raw client messages/s': raw, 'load average (1 min) before / after': `${load0} / ${load1}` },
        ratio: { label: 'sink / raw client', value: Math.round((sinkRate / raw) * 100) / 100 }, target: '>= 0.5',
        notes: `${underLoad} Both publish the same bodies and Nats-Msg-Ids to a private nats-server -js (file storage) and wait for every ack. The raw client keeps 256 publishes in flight; the sink reads the feed from Redis, encodes, spreads keys over 16 lanes and has at most one batch of 500 in flight (the checkpoint waits for the whole batch). Measured on the sink runner with the checkpoint kept in memory: the sink task adds one PostgreSQL UPDATE per batch.`,
      },
      {
        name: 'sink webhook (100 changes per request)',
        metrics: { changes: hookEvents.length, 'changes/s': hookRate, 'load average (1 min) before / after': `${load0} / ${load1}` },
        target: '>= 20000 changes/s',
        notes: `${underLoad} Receiver: a Node HTTP server in a child process answering 200; 16 lanes, one request in flight per lane, batches of 500 changes. Measured on the sink runner with the checkpoint kept in memory: the sink task adds one PostgreSQL UPDATE per batch.`,
      },
    ];
  } finally {
    await receiver.stop(); await nats.stop(); redis.disconnect(); await redisServer.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then((r) => { console.log(JSON.stringify(r, null, 2)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
}
