/**
 * NATS JetStream and RabbitMQ sinks against real brokers: a private
 * nats-server -js that is SIGKILLed and restarted mid-stream, a private
 * RabbitMQ node that is SIGKILLed and restarted on the same port and data
 * directory mid-stream, and a private vhost on the machine's RabbitMQ whose
 * connections are closed mid-stream (the shared server itself is not
 * restarted). Every change must be there once in effect (JetStream stores
 * each Nats-Msg-Id once; RabbitMQ consumers deduplicate by message-id) and
 * in key order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { waitFor } from '../../support/databases.ts';
import { createVhost, dedupe, RABBIT, readStream, startNats, startRabbitMq, type PrivateNats, type PrivateRabbitMq } from '../../support/brokers.ts';
import { createSink, FeedWriter, getSink } from '../../support/sinks.ts';
import { compareSequences } from '../../../src/replication/sequence.ts';
import { SinkChangeType } from '../../../src/replication/sinks/formats/sink-formats.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('broker sinks', () => {
  let gw: TestGateway;
  beforeAll(async () => { gw = await startTestGateway(); });
  afterAll(async () => { await gw?.close(); });

  describe('NATS JetStream', () => {
    let nats: PrivateNats;
    beforeAll(async () => { nats = await startNats(); });
    afterAll(async () => { await nats?.stop(); });

    it('stores every change once and in key order through a broker SIGKILL and restart', async () => {
      const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'nats_feed');
      try {
        await feed.writeMany(50, 10, 40);
        const sink = await createSink(gw.url, {
          name: 'nats_a', feed: 'nats_feed', kind: 'NATS', format: 'PROTOBUF',
          config: { servers: nats.url, subject: 'trib', stream: 'TRIB', ackTimeoutMs: 1000 },
          delivery: { batchSize: 100, lanes: 8, backoffMs: 100, maxBackoffMs: 1000, maxAttempts: 1000 },
        });
        const writing = feed.writeMany(150, 10, 40, 10);
        await waitFor(() => getSink(gw.url, sink.id), (s) => s.delivered > 600, 30_000, 'some delivered');
        await nats.kill();
        // The outage is felt: deliveries fail and are retried.
        await waitFor(() => getSink(gw.url, sink.id), (s) => /retrying/.test(s.error ?? ''), 15_000, 'sink retrying');
        await nats.restart();
        await writing;
        const done = await waitFor(() => getSink(gw.url, sink.id), (s) => s.position === feed.last, 90_000, 'sink caught up');
        expect(done.failed).toBe(0);
        const stored = await readStream(nats.url, 'TRIB');
        const { unique, duplicates, orderProblems } = dedupe(stored, compareSequences);
        expect({ duplicates, orderProblems: orderProblems.slice(0, 5) }).toEqual({ duplicates: 0, orderProblems: [] });
        expect(unique.map((m) => m.id).sort()).toEqual(feed.events.map((e) => `nats_feed:${e.sequence}`).sort());
        const first = SinkChangeType.toObject(SinkChangeType.decode(stored[0]!.body)) as { id: string; table: string; after: Record<string, unknown> };
        expect(first.id).toBe(stored[0]!.id);
        expect(first.table).toBe('items');
      } finally { await feed.close(); }
    });
  });

  describe('RabbitMQ', () => {
    let vh: ReturnType<typeof createVhost>;
    beforeAll(() => { vh = createVhost(); });
    afterAll(() => { vh?.remove(); });

    it('confirms every change, once in effect by message-id and in key order, through closed connections', async () => {
      const conn = await amqp.connect({ hostname: RABBIT.host, port: RABBIT.port, username: RABBIT.username, password: RABBIT.password, vhost: vh.vhost });
      const ch = await conn.createChannel();
      await ch.assertExchange('trib', 'topic', { durable: true });
      await ch.assertQueue('all', { durable: true });
      await ch.bindQueue('all', 'trib', '#');
      const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'rmq_feed');
      try {
        await feed.writeMany(50, 10, 40);
        const sink = await createSink(gw.url, {
          name: 'rmq_a', feed: 'rmq_feed', kind: 'RABBITMQ',
          config: { host: RABBIT.host, port: RABBIT.port, vhost: vh.vhost, username: RABBIT.username, password: RABBIT.password, exchange: 'trib' },
          delivery: { batchSize: 100, lanes: 8, backoffMs: 100, maxBackoffMs: 1000, maxAttempts: 1000 },
        });
        expect(sink.secretsSet).toEqual(['password']);
        expect(sink.config).not.toHaveProperty('password');
        const writing = feed.writeMany(300, 5, 40, 15);
        await waitFor(() => getSink(gw.url, sink.id), (s) => s.delivered > 600, 30_000, 'some delivered');
        await conn.close(); // the check connection would be closed too
        // The sink's connection is cut five times while changes keep coming (a broker restart cannot be
        // done on the machine's shared RabbitMQ); each time the sink connects again.
        let closed = 0;
        for (let i = 0; i < 5; i++) {
          await waitFor(async () => vh.connections(), (n) => n > 0, 15_000, 'the sink connected');
          vh.closeConnections(); closed++;
          await new Promise((r) => setTimeout(r, 300));
        }
        expect(closed).toBe(5);
        await writing;
        const done = await waitFor(() => getSink(gw.url, sink.id), (s) => s.position === feed.last, 90_000, 'sink caught up');
        expect(done.failed).toBe(0);

        const c2 = await amqp.connect({ hostname: RABBIT.host, port: RABBIT.port, username: RABBIT.username, password: RABBIT.password, vhost: vh.vhost });
        const ch2 = await c2.createChannel();
        const got: { id: string; key: string; sequence: string }[] = [];
        for (;;) {
          const m = await ch2.get('all', { noAck: true });
          if (!m) break;
          got.push({ id: m.properties.messageId as string, key: String(m.properties.headers!['Tributary-Key']), sequence: String(m.properties.headers!['Tributary-Sequence']) });
          if (got.length === 1) expect(JSON.parse(m.content.toString()).id).toBe(m.properties.messageId);
        }
        await c2.close();
        const { unique, orderProblems } = dedupe(got, compareSequences);
        expect(orderProblems.slice(0, 5)).toEqual([]);
        expect(unique.map((m) => m.id).sort()).toEqual(feed.events.map((e) => `rmq_feed:${e.sequence}`).sort());
      } finally { await feed.close(); }
    });
  });
  describe('RabbitMQ, a private node killed and restarted', () => {
    let rmq: PrivateRabbitMq;
    beforeAll(async () => { rmq = await startRabbitMq(); }, 90_000);
    afterAll(async () => { await rmq?.stop(); }, 30_000);

    it('confirms every change, once in effect by message-id and in key order, through two broker SIGKILLs (one of a hung broker with publishes unconfirmed) and restarts; status and lag recover', async () => {
      const connect = () => amqp.connect({ hostname: '127.0.0.1', port: rmq.port, username: 'guest', password: 'guest' });
      // The reading side declares its exchange, queue and binding on every connect, as consumers do: a
      // broker SIGKILLed while hung has once (CI, stop 30) come back without routing to the queue (the
      // durable queue not running, or its binding not recovered), which no publisher can repair.
      const declareQueue = async () => {
        const setup = await connect();
        setup.on('error', () => undefined);
        try {
          const sch = await setup.createChannel();
          sch.on('error', () => undefined); // a refused declare also rejects its call
          await sch.assertExchange('trib', 'topic', { durable: true });
          await sch.assertQueue('all', { durable: true });
          await sch.bindQueue('all', 'trib', '#');
        } finally { await setup.close().catch(() => undefined); }
      };
      await declareQueue();
      // A durable classic queue that did not come back running after the kill (RabbitMQ then answers its declare
      // with NOT_FOUND and returns what is routed to it as unroutable) gets one more restart, which recovers it
      // from disk with its messages; the node's log of the first try is printed.
      const declareAfterRestart = async () => {
        try { await declareQueue(); return; } catch (err) {
          console.warn(`RabbitMQ node restarted without queue 'all' running (${(err as Error).message}); restarting it once more\nnode log:\n${rmq.logTail()}`);
        }
        await rmq.restart();
        await declareQueue();
      };
      const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'rmqk_feed');
      let writing = true;
      let writer: Promise<void> = Promise.resolve();
      try {
        await feed.writeMany(50, 10, 40);
        const sink = await createSink(gw.url, {
          name: 'rmq_kill', feed: 'rmqk_feed', kind: 'RABBITMQ',
          config: { host: '127.0.0.1', port: rmq.port, username: 'guest', password: 'guest', exchange: 'trib' },
          delivery: { batchSize: 100, lanes: 8, backoffMs: 100, maxBackoffMs: 1000, maxAttempts: 1000 },
        });
        // Changes keep coming through both outages: 5 per transaction over 40 keys.
        writer = (async () => { let k = 0; while (writing) { await feed.write(Array.from({ length: 5 }, () => (k++ % 40) + 1)); await sleep(20); } })();
        const outages: { retrying: string; lagMs: number; downMs: number }[] = [];
        // A failure while the broker is in play says what the broker's own log said.
        const withLog = async <T>(p: Promise<T>): Promise<T> => {
          try { return await p; } catch (err) { (err as Error).message += `\nnode log:\n${rmq.logTail()}`; throw err; }
        };
        for (let round = 0; round < 2; round++) {
          const before = (await getSink(gw.url, sink.id)).delivered as number;
          await withLog(waitFor(() => getSink(gw.url, sink.id), (s) => s.delivered > before + 300, 60_000, `delivering before kill ${round + 1}`));
          const down = Date.now();
          if (round === 0) {
            // First the broker hangs (SIGSTOP) while changes keep coming, so it dies with publishes
            // outstanding: calls sent and not confirmed, which the sink must send again.
            rmq.freeze();
            // A batch confirmed just before may still be checkpointing: wait until the count holds still.
            let last = -1;
            const frozen = await waitFor(async () => { await sleep(400); const prev = last; last = (await getSink(gw.url, sink.id)).delivered; return { prev, now: last }; },
              (x) => x.prev === x.now, 15_000, 'no confirms from the frozen broker');
            expect(feed.events.length).toBeGreaterThan(frozen.now);
          }
          await rmq.kill();
          // The outage is felt: the sink stays RUNNING, says it is retrying, and its lag grows past the outage so far.
          const stuck = await waitFor(() => getSink(gw.url, sink.id), (s) => /retrying/.test(s.error ?? '') && s.lagMs >= 1500, 30_000, 'sink retrying, lag growing');
          expect(stuck.status).toBe('RUNNING');
          await rmq.restart();
          await withLog(declareAfterRestart());
          outages.push({ retrying: stuck.error, lagMs: stuck.lagMs, downMs: Date.now() - down });
        }
        writing = false;
        await writer;
        const caughtUp = await withLog(waitFor(() => getSink(gw.url, sink.id), (s) => s.position === feed.last, 90_000, 'sink caught up'));
        expect({ status: caughtUp.status, error: caughtUp.error, failed: caughtUp.failed, deadLetterCount: caughtUp.deadLetterCount })
          .toEqual({ status: 'RUNNING', error: null, failed: 0, deadLetterCount: 0 });
        // A change written now is delivered promptly: the lag is back to the steady state.
        await feed.write([1, 2, 3]);
        const fresh = await waitFor(() => getSink(gw.url, sink.id), (s) => s.position === feed.last, 30_000, 'fresh change delivered');
        expect(fresh.lagMs).toBeLessThan(1000);
        expect(fresh.delivered).toBe(feed.events.length);

        const c2 = await connect();
        const ch2 = await c2.createChannel();
        const got: { id: string; key: string; sequence: string }[] = [];
        for (let m = await ch2.get('all', { noAck: true }); m; m = await ch2.get('all', { noAck: true })) {
          got.push({ id: m.properties.messageId as string, key: String(m.properties.headers!['Tributary-Key']), sequence: String(m.properties.headers!['Tributary-Sequence']) });
        }
        await c2.close();
        const { unique, duplicates, orderProblems } = dedupe(got, compareSequences);
        expect(orderProblems.slice(0, 5)).toEqual([]);
        expect(unique.length).toBe(feed.events.length);
        expect(unique.map((m) => m.id).sort()).toEqual(feed.events.map((e) => `rmqk_feed:${e.sequence}`).sort());
        console.log(`RabbitMQ kill/restart: ${feed.events.length} changes, queue held ${got.length} (${duplicates} re-sent, dropped by message-id); outages ${outages.map((o) => `${o.downMs} ms (lag seen ${o.lagMs} ms)`).join(', ')}`);
      } finally {
        writing = false;
        await writer.catch(() => undefined);
        await feed.close();
      }
    }, 240_000);
  });
});
