/**
 * Multi-instance: two gateways (`tributary serve`) and three workers
 * (`tributary worker`) as separate processes sharing DATABASE_URL, REDIS_URL,
 * QUEUE_PREFIX and TRIBUTARY_SECRET_KEY. Jobs are created, read and streamed
 * through either gateway; graphql-ws subscribers and changeserver
 * long-pollers are spread over both. Gateways are SIGKILLed while they serve
 * them (and restarted on the same port), and a worker is SIGKILLed each
 * round. Every client reconnects (to the other gateway, or waits for the
 * restarted one) with `since` = the last sequence it received, and must end
 * with exactly the changes of its scopes: none missing, none twice, in order.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { freePort } from '../../src/devtools/private-servers.ts';
import { compareSequences } from '../../src/replication/sequence.ts';
import { metadataUrl } from '../support/gateway.ts';
import { mariaDatabase, uniq, type DbHandle } from '../support/databases.ts';
import { getJob } from '../support/replication.ts';
import { count, JobUnderTest, pgHandle, Processes, report, rng, sleep, waitFor, type TributaryProc } from './support.ts';

const ROUNDS = count(2, 6);

const SUB = `subscription($feed: String!, $scopes: [String!]!, $since: String) {
  changes(feed: $feed, scopes: $scopes, since: $since) { sequence table op scope newRow }
}`;

interface Consumer {
  name: string;
  scopes: string[];
  seqs: number[];
  sequences: string[];
  reconnects: number;
  via: Set<number>;
  stop(): void;
}

describe('multi-instance: 2 gateways, 3 workers, SIGKILLs of each', () => {
  const id = randomBytes(4).toString('hex');
  let procs: Processes;
  const ports: number[] = [];
  const gateways: TributaryProc[] = [];
  let workers: TributaryProc[] = [];
  const handles: DbHandle[] = [];
  const consumers: Consumer[] = [];
  const urls = () => ports.map((p) => `http://127.0.0.1:${p}`);

  beforeAll(async () => {
    procs = new Processes({ databaseUrl: metadataUrl(`tributary_chaos_mi_${id}`), redisUrl: inject('redisUrl'), queuePrefix: `mi${id}`, secretKey: 'chaos-secret-key-0123456789' });
    ports.push(await freePort(), await freePort());
    gateways[0] = await procs.gateway(ports[0]); // creates and migrates the metadata database
    const [g1, ...ws] = await Promise.all([procs.gateway(ports[1]), procs.worker(), procs.worker(), procs.worker()]);
    gateways[1] = g1!; workers = ws;
  });
  afterAll(async () => {
    for (const c of consumers) c.stop();
    await procs?.killAll();
    for (const h of handles) await h.close().catch(() => undefined);
  });

  /** A graphql-ws subscriber that resubscribes after any close from its last sequence: on the other gateway, or on the same one once restarted. */
  function subscriber(name: string, feed: string, scopes: string[], first: number, preferOther: boolean): Consumer {
    const c: Consumer = { name, scopes, seqs: [], sequences: [], reconnects: -1, via: new Set(), stop: () => { stopped = true; dispose?.(); } };
    let stopped = false; let dispose: (() => void) | undefined; let at = first;
    const connect = (): void => {
      if (stopped) return;
      c.reconnects++;
      c.via.add(at);
      const client = createClient({ url: urls()[at]!.replace('http', 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
      let ended = false;
      const again = () => {
        if (ended) return; ended = true;
        void client.dispose();
        if (stopped) return;
        setTimeout(connect, 300);
      };
      const unsubscribe = client.subscribe<{ changes: { sequence: string; table: string; op: string; newRow: { seq: number } } }>(
        { query: SUB, variables: { feed, scopes, since: c.sequences.at(-1) ?? null } },
        {
          next: (m) => {
            if (m.errors?.length) { again(); return; }
            const ch = m.data!.changes;
            c.sequences.push(ch.sequence);
            if (ch.table === 'ledger' && ch.op === 'insert') c.seqs.push(Number(ch.newRow.seq));
          },
          // preferOther: move to the other gateway at once; else wait for this one to come back on its port.
          error: () => { if (preferOther) at = 1 - at; again(); },
          complete: () => again(),
        },
      );
      dispose = () => { ended = true; unsubscribe(); void client.dispose(); };
    };
    connect();
    consumers.push(c);
    return c;
  }

  /** A changeserver long-poller (block=5) that moves to another gateway on any failure, keeping its since. */
  function poller(name: string, feed: string, scopes: string[], first: number): Consumer {
    let stopped = false; let at = first;
    const c: Consumer = { name, scopes, seqs: [], sequences: [], reconnects: 0, via: new Set([first]), stop: () => { stopped = true; } };
    void (async () => {
      while (!stopped) {
        const qs = new URLSearchParams();
        for (const s of scopes) qs.append('scope', s);
        qs.set('block', '5'); qs.set('limit', '500');
        const since = c.sequences.at(-1);
        if (since) qs.set('since', since);
        try {
          const res = await fetch(`${urls()[at]}/feeds/${feed}/changes?${qs}`, { signal: AbortSignal.timeout(15_000) });
          if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
          const body = await res.json() as { changes: { sequence: string; table: string; operation: number; newRow: Record<string, { value: unknown }> }[] };
          for (const ch of body.changes) {
            c.sequences.push(ch.sequence);
            if (ch.table.endsWith('.ledger') && ch.operation === 1) c.seqs.push(Number(ch.newRow.seq!.value));
          }
        } catch {
          if (stopped) break;
          c.reconnects++;
          at = 1 - at; c.via.add(at);
          await sleep(300);
        }
      }
    })();
    consumers.push(c);
    return c;
  }

  it(`subscriptions, long polls and jobs through either gateway survive ${ROUNDS} gateway and ${ROUNDS} worker SIGKILLs`, async () => {
    const t0 = Date.now();
    const [g0, g1] = urls() as [string, string];
    // One job created through each gateway; each read back through the other.
    const mSrc = await mariaDatabase(inject('mariaUrl'), uniq('mi_msrc')); handles.push(mSrc);
    const pDst = await pgHandle(inject('pgUrl'), uniq('mi_pdst')); handles.push(pDst);
    const pSrc = await pgHandle(inject('pgUrl'), uniq('mi_psrc')); handles.push(pSrc);
    const mDst = await mariaDatabase(inject('mariaUrl'), uniq('mi_mdst')); handles.push(mDst);
    const jobs = [
      await new JobUnderTest(g0, mSrc, pDst, mSrc.database).start(uniq('chaos_mi_m2p')),
      await new JobUnderTest(g1, pSrc, mDst, 'public').start(uniq('chaos_mi_p2m')),
    ];
    expect((await getJob(g1, jobs[0]!.job.id)).name).toBe(jobs[0]!.job.name);
    expect((await getJob(g0, jobs[1]!.job.id)).name).toBe(jobs[1]!.job.name);
    for (const j of jobs) await j.streaming();

    // Clients on both gateways, for both feeds: subscribers and long-pollers, one scope or both.
    const feeds = jobs.map((j) => j.job.name as string);
    feeds.forEach((feed, f) => {
      subscriber(`sub-a-${f}`, feed, ['a'], 0, true);
      subscriber(`sub-ab-${f}`, feed, ['a', 'b'], 1, false);
      poller(`poll-b-${f}`, feed, ['b'], 0);
      poller(`poll-ab-${f}`, feed, ['a', 'b'], 1);
    });

    const rnd = rng(77);
    const killed: string[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await sleep(rnd(1500, 3500));
      const g = r % 2;
      await gateways[g]!.kill('SIGKILL');
      killed.push(`gateway-${g}`);
      await sleep(rnd(500, 2000));
      const w = rnd(0, workers.length);
      await workers[w]!.kill('SIGKILL');
      killed.push(`worker-${w}`);
      const [gw, wk] = await Promise.all([procs.gateway(ports[g]), procs.worker()]);
      gateways[g] = gw; workers[w] = wk;
      // Jobs stay readable and controllable through either gateway between faults.
      for (const j of jobs) await waitFor(() => getJob(urls()[1 - g]!, j.job.id), (x) => x.status === 'RUNNING', 30_000, 'job via the surviving gateway');
    }
    for (const j of jobs) await j.streaming(120_000);
    await sleep(2000);

    const lasts = await Promise.all(jobs.map((j) => j.writer!.stop()));
    // Every client catches up with the whole ledger of its scopes, then the end checks.
    const want = (last: number, scopes: string[]) => Array.from({ length: last }, (_, i) => i + 1).filter((s) => scopes.includes(s % 2 ? 'a' : 'b'));
    const byFeed = (c: Consumer) => Number(c.name.at(-1));
    await waitFor(async () => consumers.map((c) => c.seqs.length - want(lasts[byFeed(c)]!, c.scopes).length), (d) => d.every((x) => x >= 0), 90_000, 'clients caught up');
    await sleep(1500);
    let lost = 0; let dup = 0;
    const notes: string[] = [];
    for (const c of consumers) {
      c.stop();
      const expected = want(lasts[byFeed(c)]!, c.scopes);
      const got = new Set(c.seqs);
      const missing = expected.filter((s) => !got.has(s));
      const doubled = c.seqs.length - got.size;
      const unordered = c.sequences.filter((s, i) => i > 0 && compareSequences(c.sequences[i - 1]!, s) >= 0).length;
      lost += missing.length; dup += doubled + unordered;
      expect({ client: c.name, missing: missing.slice(0, 10), doubled, unordered, extra: c.seqs.length - expected.length }).toEqual({ client: c.name, missing: [], doubled: 0, unordered: 0, extra: 0 });
      notes.push(`${c.name} ${c.seqs.length} (${c.reconnects} reconnects via ${[...c.via].join('+')})`);
    }
    // Destinations and feeds (the writers are stopped already; finish() only stops them again).
    for (const j of jobs) {
      const r = await j.finish(inject('redisUrl'), `mi${id}`);
      lost += r.lost; dup += r.duplicated;
    }
    const reconnected = consumers.filter((c) => c.reconnects > 0).length;
    expect(reconnected).toBeGreaterThan(0);
    report('gateway SIGKILL with subscribers and long-pollers connected (2 gateways, 3 workers)', ROUNDS, lost, dup,
      `ledgers ${lasts.join('/')} rows; clients ${notes.join(', ')}`);
    report('worker SIGKILL in a 3-worker deployment', ROUNDS, lost, dup, `kills ${killed.join(' ')}; ${Math.round((Date.now() - t0) / 1000)} s`);
    expect([lost, dup]).toEqual([0, 0]);
  });
});
