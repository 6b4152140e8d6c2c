/**
 * Issue 4, long-poll scale: thousands of concurrent changeserver long polls
 * on one gateway share one wake-up path (the feed's hub: one reader and one
 * blocking Redis connection per feed per gateway), not a Redis connection
 * each, and one insert at the source wakes them all. CI runs 2,000 waiters;
 * bench/changefeed.bench.ts runs 10,000.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { Redis } from 'ioredis';
import http from 'node:http';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { getChanges, subscribeJob, untilCapturing } from '../../support/changefeed.ts';

const WAITERS = 2000;

describe('long-poll scale', () => {
  let gw: TestGateway; let src: DbHandle; let redis: Redis;
  const feed = uniq('lpscale');
  beforeAll(async () => {
    gw = await startTestGateway();
    src = await pgDatabase(inject('pgUrl'), uniq('lpscale'));
    await src.query(`CREATE TABLE t (id int PRIMARY KEY, _change_selector text)`);
    await subscribeJob(gw.url, feed, src, 'public');
    await untilCapturing(src, 't', gw.url, feed, (n) => `INSERT INTO t VALUES (${-n}, 'probe')`);
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => { redis?.disconnect(); await gw?.close(); await src?.close(); });

  it(`${WAITERS} concurrent long polls hold no Redis connection each, and one insert wakes them all`, async () => {
    const clients = async () => (await redis.client('LIST') as string).trim().split('\n').length;
    const tail = (await getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 'probe', limit: 100000 })).body.lastSequence;
    const before = await clients();
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const url = `${gw.url}/feeds/${feed}/changes?scope=w&since=${tail}&block=60`;
    const answered: number[] = [];
    const poll = () => new Promise<{ status: number; body: any }>((resolve, reject) => {
      http.get(url, { agent }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { data += d; });
        res.on('end', () => { answered.push(Date.now()); resolve({ status: res.statusCode!, body: JSON.parse(data) }); });
      }).on('error', reject);
    });
    // Every poll is parked on the feed's hub (one reader of the feed per gateway). Connections open in waves of 250, as clients
    // arrive in practice: a single burst of thousands of SYNs overflows the listen backlog (511).
    const parked = () => gw.app.services.changes.parkedOn(feed);
    const polls: Promise<{ status: number; body: any }>[] = [];
    while (polls.length < WAITERS) {
      for (let i = 0; i < 250 && polls.length < WAITERS; i++) polls.push(poll());
      await waitFor(async () => parked(), (n) => n === polls.length, 30_000, 'polls waiting');
    }
    const during = await clients();
    console.log(`redis clients: ${before} before, ${during} with ${WAITERS} long polls waiting`);
    expect(during - before).toBeLessThanOrEqual(2);
    expect(answered).toEqual([]);
    const rss = process.memoryUsage().rss;

    const t0 = Date.now();
    await src.query(`INSERT INTO t VALUES (1, 'w')`);
    let woken = -1; // every waiter released by the hub's one read that saw the change
    const probe = setInterval(() => { if (woken < 0 && parked() === 0) woken = Date.now() - t0; }, 5);
    const results = await Promise.all(polls);
    clearInterval(probe);
    const last = Math.max(...answered) - t0;
    const first = Math.min(...answered) - t0;
    console.log(`one insert woke ${WAITERS} polls: all released ${woken} ms, first answer ${first} ms, last ${last} ms after the commit (capture included); rss ${Math.round(rss / 2 ** 20)} MiB (test process: gateway + clients)`);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.changes.map((c: any) => c.newRow.id.value)).toEqual(['1']);
    }
    expect(parked()).toBe(0);
    expect(woken).toBeGreaterThanOrEqual(0);
    expect(woken).toBeLessThan(5_000);
    expect(last).toBeLessThan(20_000);
    agent.destroy();
  });
});
