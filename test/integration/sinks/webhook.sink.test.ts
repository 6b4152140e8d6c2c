/**
 * Webhook sink against a local HTTP receiver: every change delivered exactly
 * once in effect and in per-key order while the endpoint answers 500 for a
 * while and then 200; signatures and Idempotency-Key; the dead-letter path
 * (a key the endpoint refuses is parked with its later changes while other
 * keys go on; replay in order; drop); secrets never returned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { waitFor } from '../../support/databases.ts';
import { dedupe, signatureValid, startReceiver } from '../../support/brokers.ts';
import { createSink, FeedWriter, getSink, itemKey } from '../../support/sinks.ts';
import { compareSequences } from '../../../src/replication/sequence.ts';

const SECRET = 'whsec-0123456789-do-not-leak';

interface Got { id: string; key: string; sequence: string; newRow: { id: number; v: number } }

/** Changes in the bodies of the requests answered 2xx, in arrival order. */
function delivered(requests: { body: Buffer; status: number }[]): Got[] {
  const out: Got[] = [];
  for (const r of requests) {
    if (r.status >= 300) continue;
    const parsed = JSON.parse(r.body.toString('utf8')) as Got | Got[];
    for (const c of Array.isArray(parsed) ? parsed : [parsed]) out.push({ ...c, key: itemKey(c.newRow.id) });
  }
  return out;
}

describe('webhook sink', () => {
  let gw: TestGateway;
  beforeAll(async () => { gw = await startTestGateway(); });
  afterAll(async () => { await gw?.close(); });

  it('delivers every change once in effect, in key order, through 500s then 200s, signed', async () => {
    const receiver = await startReceiver();
    const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'wh_feed_a');
    try {
      await feed.writeMany(20, 5, 25);
      // The endpoint is down (500) for the first 1.5 s of deliveries.
      let downUntil = 0;
      receiver.setAnswer(() => { if (!downUntil) downUntil = Date.now() + 1500; return Date.now() < downUntil ? 500 : 200; });
      const sink = await createSink(gw.url, {
        name: 'wh_a', feed: 'wh_feed_a', kind: 'WEBHOOK', config: { url: receiver.url, batchSize: 7, secret: SECRET, authorization: `Bearer ${SECRET}-token` },
        delivery: { batchSize: 40, lanes: 4, backoffMs: 50, maxBackoffMs: 400, maxAttempts: 100 },
      });
      expect(sink.config).not.toHaveProperty('secret');
      expect(sink.secretsSet.sort()).toEqual(['authorization', 'secret']);
      await feed.writeMany(30, 4, 25, 5);
      const done = await waitFor(() => getSink(gw.url, sink.id), (s) => s.position === feed.last, 60_000, 'sink caught up');

      const got = delivered(receiver.requests);
      const { unique, orderProblems } = dedupe(got, compareSequences);
      expect(orderProblems).toEqual([]);
      expect(unique.map((c) => c.id).sort()).toEqual(feed.events.map((e) => `wh_feed_a:${e.sequence}`).sort());
      expect(receiver.requests.filter((r) => r.status === 500).length).toBeGreaterThan(0);
      for (const r of receiver.requests) {
        expect(signatureValid(SECRET, r.headers['tributary-signature'] as string, r.body)).toBe(true);
        expect(r.headers.authorization).toBe(`Bearer ${SECRET}-token`);
        const ids = (JSON.parse(r.body.toString()) as Got[]).map((c) => c.id);
        expect(ids.length).toBeLessThanOrEqual(7);
        expect(r.headers['idempotency-key']).toBe(ids.length === 1 ? ids[0] : `${ids[0]}..${ids.at(-1)!.split(':')[1]}`);
      }
      expect(done.delivered).toBe(feed.events.length);
      expect(done.failed).toBe(0);
      expect(done.status).toBe('RUNNING');

      // The secret is never returned, by any field.
      const all = await gql(gw.url, '{ sinks { id config secretsSet error } }');
      expect(JSON.stringify(all.body)).not.toContain(SECRET);
      await gql(gw.url, `mutation { deleteSink(id: "${sink.id}") }`);
    } finally {
      await feed.close(); await receiver.close();
    }
  });

  it('dead-letters a refused key with its later changes while other keys go on; replays in order; drops', async () => {
    const refused = new Set<number>([7]);
    const receiver = await startReceiver(({ body }) => {
      const c = JSON.parse(body.toString()) as { after: { id: number } };
      return refused.has(c.after.id) ? 422 : 200;
    });
    const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'wh_feed_b');
    try {
      const sink = await createSink(gw.url, {
        name: 'wh_b', feed: 'wh_feed_b', kind: 'WEBHOOK', format: 'DEBEZIUM', config: { url: receiver.url },
        delivery: { batchSize: 20, lanes: 3, backoffMs: 20, maxBackoffMs: 50, maxAttempts: 3, onFailure: 'CONTINUE' },
      });
      await feed.writeMany(10, 5, 10); // keys 1..10, five versions each
      await waitFor(() => getSink(gw.url, sink.id), (s) => s.position === feed.last, 30_000, 'sink past the batch');
      const env = (r: { body: Buffer }) => JSON.parse(r.body.toString()) as { after: { id: number; v: number }; op: string; source: { sequence: string; id: string }; ts_ms: number; before: unknown };
      const ok = receiver.requests.filter((r) => r.status === 200).map(env);
      expect(ok.length).toBe(45);
      expect(ok.some((e) => e.after.id === 7)).toBe(false);
      expect(ok.find((e) => e.after.id === 1 && e.after.v === 1)!.op).toBe('c');
      expect(ok.find((e) => e.after.id === 1 && e.after.v === 2)!.op).toBe('u');

      let s = await getSink(gw.url, sink.id);
      expect({ failed: s.failed, deadLetterCount: s.deadLetterCount, delivered: s.delivered }).toEqual({ failed: 5, deadLetterCount: 5, delivered: 45 });
      const list = await gql(gw.url, `query { sinkDeadLetters(id: "${sink.id}") { total letters { id sequence messageId key error attempts change } } }`);
      const letters = list.body.data.sinkDeadLetters.letters;
      expect(letters.map((l: any) => l.change.after.v)).toEqual([1, 2, 3, 4, 5]);
      expect(letters[0].error).toContain('HTTP 422');
      expect(letters[0].attempts).toBe(1); // a refusal is not retried
      expect(letters[1].error).toContain('behind an earlier dead-lettered message');

      // A new change of the parked key joins the list behind the others, even though the endpoint would take it now.
      refused.clear();
      await feed.write([7, 2]);
      await waitFor(() => getSink(gw.url, sink.id), (x) => x.position === feed.last, 30_000, 'sink past the new changes');
      s = await getSink(gw.url, sink.id);
      expect(s.deadLetterCount).toBe(6);

      const before = receiver.requests.length;
      const replay = await gql(gw.url, `mutation { replaySinkDeadLetters(id: "${sink.id}") { delivered failed remaining errors } }`);
      expect(replay.body.data.replaySinkDeadLetters).toEqual({ delivered: 6, failed: 0, remaining: 0, errors: [] });
      expect(receiver.requests.slice(before).map((r) => env(r).after)).toEqual([1, 2, 3, 4, 5, 6].map((v) => ({ id: 7, v, note: `v${v}` })));
      // The key is free again: its next change goes straight through.
      await feed.write([7]);
      await waitFor(async () => receiver.requests.slice(-1).map(env)[0]!.after, (a) => a.id === 7 && a.v === 7, 30_000, 'key 7 delivered directly');

      // Drop: a refused key parks two changes; drop one by id, then the rest.
      refused.add(9);
      await feed.write([9]); await feed.write([9]);
      await waitFor(() => getSink(gw.url, sink.id), (x) => x.deadLetterCount === 2, 30_000, 'two dead letters');
      const two = (await gql(gw.url, `query { sinkDeadLetters(id: "${sink.id}") { letters { id } } }`)).body.data.sinkDeadLetters.letters;
      expect((await gql(gw.url, `mutation($ids: [ID!]) { dropSinkDeadLetters(id: "${sink.id}", ids: $ids) }`, { ids: [two[0].id] })).body.data.dropSinkDeadLetters).toBe(1);
      expect((await gql(gw.url, `mutation { dropSinkDeadLetters(id: "${sink.id}") }`)).body.data.dropSinkDeadLetters).toBe(1);
      expect((await getSink(gw.url, sink.id)).deadLetterCount).toBe(0);
      await gql(gw.url, `mutation { deleteSink(id: "${sink.id}") }`);
    } finally {
      await feed.close(); await receiver.close();
    }
  });

  it('stops before a message with onFailure STOP and resumes there; refuses bad input in its dialect', async () => {
    let refuse = true;
    const receiver = await startReceiver(() => (refuse ? 400 : 200));
    const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'wh_feed_c');
    try {
      await feed.writeMany(3, 2, 4);
      const sink = await createSink(gw.url, {
        name: 'wh_c', feed: 'wh_feed_c', kind: 'WEBHOOK', format: 'PROTOBUF', config: { url: receiver.url },
        delivery: { batchSize: 10, maxAttempts: 2, backoffMs: 10, maxBackoffMs: 20, onFailure: 'STOP' },
      });
      const failed = await waitFor(() => getSink(gw.url, sink.id), (s) => s.status === 'FAILED', 30_000, 'sink failed');
      expect(failed.position).toBeNull();
      expect(failed.error, failed.error).toContain('HTTP 400');
      refuse = false;
      await gql(gw.url, `mutation { resumeSink(id: "${sink.id}") { status } }`);
      await waitFor(() => getSink(gw.url, sink.id), (s) => s.position === feed.last && s.status === 'RUNNING', 30_000, 'resumed to the end');
      const okBodies = receiver.requests.filter((r) => r.status === 200);
      expect(okBodies.length).toBe(6);
      expect(okBodies[0]!.headers['content-type']).toBe('application/x-protobuf');

      const paused = await gql(gw.url, `mutation { pauseSink(id: "${sink.id}") { status } }`);
      expect(paused.body.data.pauseSink.status).toBe('PAUSED');
      const again = await gql(gw.url, `mutation { pauseSink(id: "${sink.id}") { status } }`);
      expect(again.body.errors?.[0]?.extensions?.code).toBe('INVALID_STATE');

      const bad = await gql(gw.url, 'mutation($i: CreateSinkInput!) { createSink(input: $i) { id } }', { i: { name: 'wh_bad', feed: 'wh_feed_c', kind: 'WEBHOOK', config: { url: 'ftp://x' } } });
      expect(bad.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const dup = await gql(gw.url, 'mutation($i: CreateSinkInput!) { createSink(input: $i) { id } }', { i: { name: 'wh_c', feed: 'wh_feed_c', kind: 'WEBHOOK', config: { url: receiver.url } } });
      expect(dup.body.errors?.[0]?.extensions?.code).toBe('CONFLICT');
      await gql(gw.url, `mutation { deleteSink(id: "${sink.id}") }`);
    } finally {
      await feed.close(); await receiver.close();
    }
  });
});
