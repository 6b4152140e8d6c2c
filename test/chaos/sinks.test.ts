/**
 * Chaos: a MariaDB source captured by a SUBSCRIBE job, its feed delivered by
 * a NATS JetStream sink, a webhook sink and a RabbitMQ sink, while worker
 * processes are SIGKILLed mid-batch (and replaced), the private nats-server
 * and the private RabbitMQ node are each SIGKILLed and restarted on the same
 * port and data (a worker is killed while each is down, so a new task starts
 * against a dead broker), and the webhook answers 500 for a while. Every account row
 * is updated v = v + 1 by a writer, so each key's changes carry v = 0, 1, 2, ...:
 * at the end JetStream must hold each change exactly once (its duplicate
 * window drops the re-sent batches), and every target must show each key's
 * versions complete and in order after deduplication by message id.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { mariaDatabase, uniq, type DbHandle } from '../support/databases.ts';
import { getChanges, subscribeJob, untilCapturing } from '../support/changefeed.ts';
import amqp from 'amqplib';
import { dedupe, readStream, startNats, startRabbitMq, startReceiver, type PrivateNats, type PrivateRabbitMq } from '../support/brokers.ts';
import { createSink, getSink } from '../support/sinks.ts';
import { compareSequences } from '../../src/replication/sequence.ts';
import { count, Processes, report, rng, sleep, waitFor, type TributaryProc } from './support.ts';

const KILLS = count(3, 10);
const KEYS = 25;

/** Per key, the versions seen (deduplicated by id, in arrival order) must be 0, 1, ..., final. */
function versionProblems(got: { key: string; v: number }[], finals: Map<number, number>): { lost: number; disorder: string[] } {
  const byKey = new Map<string, number[]>();
  for (const g of got) { let l = byKey.get(g.key); if (!l) byKey.set(g.key, (l = [])); l.push(g.v); }
  let lost = 0; const disorder: string[] = [];
  for (const [id, final] of finals) {
    const vs = byKey.get(String(id)) ?? [];
    lost += final + 1 - new Set(vs).size;
    if (vs.some((v, i) => v !== i)) disorder.push(`${id}: ${vs.slice(0, 12).join(',')}...`);
  }
  return { lost, disorder };
}

describe('chaos: sinks', () => {
  let gw: TestGateway; let src: DbHandle; let procs: Processes; let nats: PrivateNats;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let rmq: PrivateRabbitMq;
  const rabbit = () => amqp.connect({ hostname: '127.0.0.1', port: rmq.port, username: 'guest', password: 'guest' });

  beforeAll(async () => {
    gw = await startTestGateway({}, { worker: false });
    procs = new Processes({ databaseUrl: gw.config.databaseUrl, redisUrl: gw.config.redisUrl, queuePrefix: gw.config.queuePrefix, secretKey: gw.config.secretKey! });
    src = await mariaDatabase(inject('mariaUrl'), uniq('sk_src'));
    await src.query('CREATE TABLE acct (id int PRIMARY KEY, v int NOT NULL) ENGINE=InnoDB');
    await src.query('CREATE TABLE probe (n int PRIMARY KEY, _change_selector varchar(8)) ENGINE=InnoDB');
    nats = await startNats();
    receiver = await startReceiver();
    rmq = await startRabbitMq();
    const c = await rabbit();
    const ch = await c.createChannel();
    await ch.assertExchange('chaos', 'topic', { durable: true });
    await ch.assertQueue('all', { durable: true });
    await ch.bindQueue('all', 'chaos', '#');
    await c.close();
  });
  afterAll(async () => {
    await procs?.killAll();
    await nats?.stop();
    await receiver?.close();
    await rmq?.stop();
    await gw?.close();
    await src?.close();
  });

  it(`delivers every change once in effect and in key order through ${KILLS + 1} worker SIGKILLs (one mid-batch), a NATS and a RabbitMQ SIGKILL and restart, and webhook 500s`, async () => {
    const t0 = Date.now();
    let worker: TributaryProc = await procs.worker();
    const feedName = uniq('sk_feed');
    await subscribeJob(gw.url, feedName, src, src.database);
    await untilCapturing(src, 'probe', gw.url, feedName, (n) => `INSERT INTO probe VALUES (${n}, 'probe')`);
    await src.query(`INSERT INTO acct SELECT seq, 0 FROM seq_1_to_${KEYS}`);

    const delivery = { batchSize: 200, lanes: 8, backoffMs: 100, maxBackoffMs: 1000, maxAttempts: 1000 };
    const natsSink = await createSink(gw.url, { name: uniq('sk_nats'), feed: feedName, kind: 'NATS', tables: ['acct'], config: { servers: nats.url, subject: 'chaos', stream: 'CHAOS', ackTimeoutMs: 1000 }, delivery });
    const hookSink = await createSink(gw.url, { name: uniq('sk_hook'), feed: feedName, kind: 'WEBHOOK', tables: [`${src.database}.acct`], config: { url: receiver.url, batchSize: 50 }, delivery });
    const rabbitSink = await createSink(gw.url, { name: uniq('sk_rmq'), feed: feedName, kind: 'RABBITMQ', tables: ['acct'], config: { host: '127.0.0.1', port: rmq.port, username: 'guest', password: 'guest', exchange: 'chaos' }, delivery });

    const finals = new Map<number, number>(Array.from({ length: KEYS }, (_, i) => [i + 1, 0]));
    let writing = true; let updates = 0;
    const writer = (async () => {
      const r = rng(99);
      while (writing) {
        const ids = [...new Set(Array.from({ length: r(1, 4) }, () => r(1, KEYS + 1)))];
        await src.query(`UPDATE acct SET v = v + 1 WHERE id IN (${ids.join(',')})`);
        for (const id of ids) finals.set(id, finals.get(id)! + 1);
        updates += ids.length;
        await sleep(5);
      }
    })();

    const rnd = rng(7);
    const faults: string[] = [];
    // The first kill lands mid-batch for certain: requests carrying key 3 are held unanswered
    // (the other lanes' requests of the batch are answered), and the worker dies while one is held.
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    let held = 0;
    receiver.setAnswer(async ({ body }) => {
      const changes = JSON.parse(body.toString()) as { newRow: { id: number } }[];
      if (changes.some((c) => c.newRow.id === 3)) { held++; await released; }
      return 200;
    });
    await waitFor(async () => held, (x) => x > 0, 30_000, 'a request held');
    await sleep(300);
    await worker.kill('SIGKILL'); faults.push('worker SIGKILL mid-batch');
    receiver.setAnswer(() => 200);
    release();
    worker = await procs.worker();
    for (let i = 0; i < KILLS; i++) {
      await sleep(rnd(1000, 3000));
      if (i === 1) {
        await nats.kill(); faults.push('nats SIGKILL');
        // The NATS sink is then stuck inside a batch (publishes time out and are retried), so this
        // round's worker kill lands mid-batch for it too.
        await waitFor(() => getSink(gw.url, natsSink.id), (x) => /retrying/.test(x.error ?? ''), 30_000, 'NATS sink retrying');
      }
      if (i === 0) {
        await rmq.kill(); faults.push('RabbitMQ SIGKILL');
        await waitFor(() => getSink(gw.url, rabbitSink.id), (x) => /retrying/.test(x.error ?? ''), 30_000, 'RabbitMQ sink retrying');
      }
      if (i === Math.min(2, KILLS - 1)) {
        const until = Date.now() + 2000;
        receiver.setAnswer(() => (Date.now() < until ? 500 : 200));
        faults.push('webhook 500 for 2 s');
      }
      await worker.kill('SIGKILL'); faults.push('worker SIGKILL');
      worker = await procs.worker();
      if (i === 0) { await sleep(1000); await rmq.restart(); faults.push('RabbitMQ restarted'); }
      if (i === 1) { await sleep(1000); await nats.restart(); faults.push('nats restarted'); }
    }
    await sleep(1000);
    writing = false;
    await writer;

    // An end marker committed after the writer's last update: once the feed holds it (capture may be
    // recovering from the last kill), it holds every update before it too.
    await src.query("INSERT INTO probe VALUES (1000000, 'end')");
    const marker = await waitFor(() => getChanges(gw.url, `/feeds/${feedName}/changes`, { scope: 'end', limit: 1, block: 2 }),
      (r) => r.status === 200 && r.body.changes.length === 1, 120_000, 'end marker in the feed');
    const last: string = marker.body.changes[0].sequence;
    for (const s of [natsSink, hookSink, rabbitSink]) {
      await waitFor(() => getSink(gw.url, s.id), (x) => x.position !== null && compareSequences(x.position, last) >= 0, 120_000, `${s.name} caught up`);
    }

    const stored = await readStream(nats.url, 'CHAOS');
    const natsGot = stored.map((m) => { const c = JSON.parse(Buffer.from(m.body).toString()); return { id: m.id, key: String(c.newRow.id), sequence: m.sequence, v: c.newRow.v as number }; });
    const n = dedupe(natsGot, compareSequences);
    const natsCheck = versionProblems(n.unique, finals);

    const hookGot: { id: string; key: string; sequence: string; v: number }[] = [];
    for (const r of receiver.requests) {
      if (r.status !== 200) continue;
      for (const c of JSON.parse(r.body.toString()) as { id: string; sequence: string; newRow: { id: number; v: number } }[]) hookGot.push({ id: c.id, key: String(c.newRow.id), sequence: c.sequence, v: c.newRow.v });
    }
    const h = dedupe(hookGot, compareSequences);
    const hookCheck = versionProblems(h.unique, finals);
    const expected = KEYS + updates;

    const rc = await rabbit();
    const rch = await rc.createChannel();
    const rabbitGot: { id: string; key: string; sequence: string; v: number }[] = [];
    for (let m = await rch.get('all', { noAck: true }); m; m = await rch.get('all', { noAck: true })) {
      const c = JSON.parse(m.content.toString()) as { sequence: string; newRow: { id: number; v: number } };
      rabbitGot.push({ id: m.properties.messageId as string, key: String(c.newRow.id), sequence: c.sequence, v: c.newRow.v });
    }
    await rc.close();
    const r = dedupe(rabbitGot, compareSequences);
    const rabbitCheck = versionProblems(r.unique, finals);

    expect(updates).toBeGreaterThan(100);
    // The batch in flight at the mid-batch kill was sent again by the next worker (and dropped by id here).
    expect(h.duplicates).toBeGreaterThan(0);
    expect({ natsStoredTwice: n.duplicates, natsLost: natsCheck.lost, natsDisorder: natsCheck.disorder, natsCount: stored.length })
      .toEqual({ natsStoredTwice: 0, natsLost: 0, natsDisorder: [], natsCount: expected });
    expect({ hookLost: hookCheck.lost, hookDisorder: hookCheck.disorder, hookUnique: h.unique.length }).toEqual({ hookLost: 0, hookDisorder: [], hookUnique: expected });
    expect({ rabbitLost: rabbitCheck.lost, rabbitDisorder: rabbitCheck.disorder, rabbitUnique: r.unique.length }).toEqual({ rabbitLost: 0, rabbitDisorder: [], rabbitUnique: expected });
    for (const s of [natsSink, hookSink, rabbitSink]) expect((await getSink(gw.url, s.id)).failed).toBe(0);
    report('sink: worker SIGKILL (one mid-batch) + NATS restart + RabbitMQ restart + webhook 500', KILLS + 4, natsCheck.lost + hookCheck.lost + rabbitCheck.lost, n.duplicates,
      `${expected} changes; JetStream stored each once; webhook received ${hookGot.length} (re-sent: ${h.duplicates}, dropped by id); RabbitMQ queue ${rabbitGot.length} (re-sent: ${r.duplicates}, dropped by message-id); ${faults.join(', ')}; ${Math.round((Date.now() - t0) / 1000)} s`);
    await gql(gw.url, `mutation { deleteSink(id: "${natsSink.id}") }`);
    await gql(gw.url, `mutation { deleteSink(id: "${hookSink.id}") }`);
    await gql(gw.url, `mutation { deleteSink(id: "${rabbitSink.id}") }`);
  }, 600_000);
});
