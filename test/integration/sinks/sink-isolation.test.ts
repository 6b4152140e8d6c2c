/**
 * What surrounds delivery: a webhook that is down holds back only its own
 * sink (another sink on the same feed, and the feed's appends, go on); TLS
 * with a private CA; the operator's host allow-list; the sinkEvents
 * subscription.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { waitFor } from '../../support/databases.ts';
import { startReceiver } from '../../support/brokers.ts';
import { createSink, FeedWriter, getSink } from '../../support/sinks.ts';

describe('sinks: isolation, TLS, allow-list, events', () => {
  let gw: TestGateway;
  beforeAll(async () => { gw = await startTestGateway(); });
  afterAll(async () => { await gw?.close(); });

  it('a webhook that is down holds back only its own sink', async () => {
    const down = await startReceiver(() => 503);
    const up = await startReceiver();
    const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'iso_feed');
    try {
      const delivery = { batchSize: 50, backoffMs: 50, maxBackoffMs: 200, maxAttempts: 1000 };
      const stuck = await createSink(gw.url, { name: 'iso_down', feed: 'iso_feed', kind: 'WEBHOOK', config: { url: down.url }, delivery });
      const fine = await createSink(gw.url, { name: 'iso_up', feed: 'iso_feed', kind: 'WEBHOOK', config: { url: up.url }, delivery });
      await feed.writeMany(40, 5, 20, 5);
      await waitFor(() => getSink(gw.url, fine.id), (s) => s.position === feed.last, 30_000, 'the healthy sink caught up');
      const s = await getSink(gw.url, stuck.id);
      expect(s.position).toBeNull();
      expect(s.error).toMatch(/retrying.*HTTP 503/);
      expect(down.requests.length).toBeGreaterThan(3);
      expect(up.requests.length).toBe(200);
      for (const id of [stuck.id, fine.id]) await gql(gw.url, `mutation { deleteSink(id: "${id}") }`);
    } finally {
      await feed.close(); await down.close(); await up.close();
    }
  });

  it('webhook over TLS: trusts a private CA given in tls.ca, refuses an unknown certificate', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sink-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const cert = readFileSync(`${dir}/cert.pem`, 'utf8');
    let got = 0;
    const server = https.createServer({ key: readFileSync(`${dir}/key.pem`), cert }, (req, res) => { req.resume(); req.on('end', () => { got++; res.end('ok'); }); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/hook`;
    const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'tls_feed');
    try {
      await feed.writeMany(5, 2, 3);
      const delivery = { batchSize: 20, backoffMs: 10, maxBackoffMs: 20, maxAttempts: 2 };
      const trusted = await createSink(gw.url, { name: 'tls_ok', feed: 'tls_feed', kind: 'WEBHOOK', config: { url, tls: { ca: cert } }, delivery });
      const untrusted = await createSink(gw.url, { name: 'tls_unknown', feed: 'tls_feed', kind: 'WEBHOOK', config: { url }, delivery });
      await waitFor(() => getSink(gw.url, trusted.id), (s) => s.position === feed.last && s.delivered === 10, 30_000, 'delivered over TLS');
      const refused = await waitFor(() => getSink(gw.url, untrusted.id), (s) => s.position === feed.last, 30_000, 'untrusted sink done');
      expect({ delivered: refused.delivered, failed: refused.failed }).toEqual({ delivered: 0, failed: 10 });
      const letters = await gql(gw.url, `query { sinkDeadLetters(id: "${untrusted.id}", limit: 1) { letters { error } } }`);
      expect(letters.body.data.sinkDeadLetters.letters[0].error).toMatch(/self.signed|certificate/i);
      expect(got).toBe(10); // one request per change (webhook batchSize 1)
    } finally {
      await feed.close(); server.closeAllConnections(); server.close();
    }
  });

  it('refuses hosts outside SINK_ALLOWED_HOSTS', async () => {
    const strict = await startTestGateway({ sinkAllowedHosts: ['hooks.example.com', '*.internal.example'] } as never, { worker: false });
    try {
      const mk = (name: string, url: string) => gql(strict.url, 'mutation($i: CreateSinkInput!) { createSink(input: $i) { id } }', { i: { name, feed: 'f', kind: 'WEBHOOK', config: { url } } });
      const no = await mk('al_no', 'http://127.0.0.1:9/hook');
      expect(no.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(no.body.errors?.[0]?.message).toContain('SINK_ALLOWED_HOSTS');
      expect((await mk('al_yes', 'https://hooks.example.com/x')).body.errors).toBeUndefined();
      expect((await mk('al_sub', 'https://a.internal.example/x')).body.errors).toBeUndefined();
      const nats = await gql(strict.url, 'mutation($i: CreateSinkInput!) { createSink(input: $i) { id } }', { i: { name: 'al_nats', feed: 'f', kind: 'NATS', config: { servers: 'nats://10.0.0.1:4222' } } });
      expect(nats.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    } finally { await strict.close(); }
  });

  it('sinkEvents: the state now, then progress', async () => {
    const receiver = await startReceiver();
    const feed = new FeedWriter(gw.config.redisUrl, gw.config.queuePrefix, 'ev_feed');
    const client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
    try {
      const sink = await createSink(gw.url, { name: 'ev_sink', feed: 'ev_feed', kind: 'WEBHOOK', config: { url: receiver.url } });
      const events: any[] = [];
      const dispose = client.subscribe({ query: `subscription { sinkEvents(id: "${sink.id}") { sinkId kind status position delivered } }` }, {
        next: (v) => { if (v.data) events.push((v.data as any).sinkEvents); }, error: () => undefined, complete: () => undefined,
      });
      await waitFor(async () => events.length, (n) => n > 0, 10_000, 'first event');
      expect(events[0]).toMatchObject({ sinkId: sink.id, kind: 'status', status: 'RUNNING' });
      await feed.writeMany(3, 2, 2);
      await waitFor(async () => events.at(-1), (e) => e?.kind === 'progress' && e.position === feed.last, 15_000, 'progress event');
      await gql(gw.url, `mutation { pauseSink(id: "${sink.id}") { status } }`);
      await waitFor(async () => events.at(-1), (e) => e?.kind === 'status' && e.status === 'PAUSED', 15_000, 'paused event');
      dispose();
      const unknown = await gql(gw.url, 'query { sink(id: "nope") { id } }');
      expect(unknown.body.data.sink).toBeNull();
      await gql(gw.url, `mutation { deleteSink(id: "${sink.id}") }`);
    } finally {
      await client.dispose(); await feed.close(); await receiver.close();
    }
  });
});
