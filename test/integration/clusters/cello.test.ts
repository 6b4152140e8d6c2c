/**
 * Cluster pool end to end: the Cello v2 document's requests verbatim, bad
 * input, the race for the last cluster, authz, placement on a cluster's
 * workers, stop/start, and release while a job runs.
 *
 * Processes: one gateway + shared-pool worker (in-process), a worker of
 * cluster `ca` (second in-process App) and a worker of cluster `cb` (a child
 * process: `node bin/tributary.js worker --cluster cb`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { App } from '../../../src/app.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { Role } from '../../../src/auth/roles.ts';
import { bullPrefix, clusterQueueName } from '../../../src/queues/queue-names.ts';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { startLegacyListener } from '../../../src/server/legacy-listener.ts';
import { celloRouter } from '../../../src/rest-compat/cello/index.ts';
import { connInput, pgDatabase, waitFor, type DbHandle } from '../../support/databases.ts';
import { TaskKind } from '../../../src/domain/task-model.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin/tributary.js');

const POOL = [
  { name: 'ca', size: 4, consensus_plugin: 'pbft', consensus_mode: 'batch' },
  { name: 'cb', size: 4, consensus_plugin: 'pbft', consensus_mode: 'batch' },
  { name: 'cc', size: 4, consensus_plugin: 'pbft', consensus_mode: 'classic' },
  { name: 'last', size: 3, consensus_plugin: 'kafka' },
];

const CLUSTER = 'id name size status health userId releaseStatus releaseProgress queue workers apiUrl daemonUrl';

describe('cluster pool and the Cello v2 API', () => {
  let gw: TestGateway;
  let workerA: App;
  let childB: ChildProcess;
  let childLog = '';
  let src: DbHandle; let dst: DbHandle;
  const tok: Record<string, string> = {};

  /** A Cello call: GET with a raw query string, or POST with JSON or form. */
  async function cello(method: 'GET' | 'POST', pathAndQuery: string, body?: { json?: unknown; form?: Record<string, string> }, token = tok.admin) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    let payload: string | undefined;
    if (body?.json !== undefined) { headers['content-type'] = 'application/json'; payload = JSON.stringify(body.json); }
    if (body?.form) { headers['content-type'] = 'application/x-www-form-urlencoded'; payload = new URLSearchParams(body.form).toString(); }
    const res = await fetch(`${gw.url}${pathAndQuery}`, { method, headers, body: payload });
    return { http: res.status, body: (await res.json()) as { code: number; data: any; error: string; status: string } };
  }
  const as = (who: string) => (q: string, v?: Record<string, unknown>) => gql(gw.url, q, v, tok[who]);
  const admin = as('admin');
  const clusterByName = async (name: string) => (await admin(`query($id: ID!) { cluster(id: $id) { ${CLUSTER} } }`, { id: name })).body.data.cluster;
  const waitReleased = (name: string) => waitFor(() => clusterByName(name), (c: any) => c.releaseStatus === 'RELEASED' && c.userId === null, 60_000, `${name} released`);

  beforeAll(async () => {
    gw = await startTestGateway({ clusters: POOL } as never);
    for (const [name, role] of [['admin', Role.Admin], ['alice', Role.Operator], ['bob', Role.Operator], ['carol', Role.Reader]] as const) {
      tok[name] = (await gw.app.services.tokens.create(name, role)).token;
    }
    workerA = new App({ config: { ...gw.config, workerCluster: 'ca' }, serve: false, worker: true, logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
    await workerA.start();
    childB = spawn(process.execPath, [BIN, 'worker', '--cluster', 'cb'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DATABASE_URL: gw.config.databaseUrl, REDIS_URL: gw.config.redisUrl, QUEUE_PREFIX: gw.config.queuePrefix, TRIBUTARY_SECRET_KEY: 'test-secret-key-0123456789', LOG_LEVEL: 'warn', WORKER_CONCURRENCY: '4', TRIBUTARY_CONFIG: '' },
    });
    childB.stdout!.on('data', (d) => { childLog += String(d); });
    childB.stderr!.on('data', (d) => { childLog += String(d); });
    await waitFor(() => clusterByName('cb'), (c: any) => c.health === 'OK', 60_000, `worker of cb up (log: ${childLog})`);
    src = await pgDatabase(inject('pgUrl'));
    dst = await pgDatabase(inject('pgUrl'));
    await src.query('CREATE TABLE items (id int primary key, name text)');
    await src.query(`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g`);
  });

  afterAll(async () => {
    if (childB && childB.exitCode === null) {
      const exited = new Promise((r) => childB.once('exit', r));
      childB.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (childB.exitCode === null) childB.kill('SIGKILL');
    }
    await workerA?.close();
    await gw?.close();
    await src?.close(); await dst?.close();
  });

  it('applies the configured pool at start, with slots, labels and live workers', async () => {
    const r = await admin(`{ clusters(first: 10) { totalCount edges { node { ${CLUSTER} consensusPlugin consensusMode } } } }`);
    const byName = Object.fromEntries(r.body.data.clusters.edges.map((e: any) => [e.node.name, e.node]));
    expect(Object.keys(byName).sort()).toEqual(['ca', 'cb', 'cc', 'last']);
    expect(byName.ca).toMatchObject({ size: 4, status: 'RUNNING', health: 'OK', userId: null, queue: 'tasks-cluster-ca', consensusPlugin: 'pbft', consensusMode: 'batch' });
    expect(byName.ca.workers).toEqual([workerA.services.nodes.id]);
    expect(byName.cc.health).toBe('FAIL'); // no worker joined it
    expect(byName.ca.daemonUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/0\/tasks-cluster-ca$/);
    const q = new Queue('tasks-cluster-ca', { connection: new Redis(gw.config.redisUrl, { maxRetriesPerRequest: null }) as unknown as ConnectionOptions, prefix: bullPrefix(gw.config.queuePrefix) });
    expect(await q.getGlobalConcurrency()).toBe(4);
    await q.close();
    // Applying the pool again (a restart) creates nothing and deletes nothing.
    expect(await gw.app.services.clusters.applyPool(POOL)).toEqual([]);
  });

  it('serves the document\'s requests verbatim', async () => {
    // GET /cluster_op?action=apply?user_id=xxxx  (the document's second "?")
    const a1 = await cello('GET', '/v2/cluster_op?action=apply?user_id=xxxx');
    expect(a1.http).toBe(200);
    expect(a1.body).toMatchObject({ code: 200, error: '', status: 'OK' });
    expect(Object.keys(a1.body.data).sort()).toEqual(['api_url', 'consensus_mode', 'consensus_plugin', 'daemon_url', 'id', 'name', 'size', 'user_id']);
    expect(a1.body.data.user_id).toBe('xxxx');
    expect(a1.body.data.api_url).toBe(gw.url);
    // The user's live cluster comes back again.
    const a2 = await cello('GET', '/v2/cluster_op?action=apply?user_id=xxxx');
    expect(a2.body.data.id).toBe(a1.body.data.id);

    // POST /cluster_op {action:apply, user_id:xxx, consensus_plugin:pbft, consensus_mode:batch, size:4, allow_multiple:False}
    const a3 = await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'xxx', consensus_plugin: 'pbft', consensus_mode: 'batch', size: 4, allow_multiple: false } });
    expect(a3.http).toBe(200);
    expect(a3.body.data).toMatchObject({ user_id: 'xxx', consensus_plugin: 'pbft', consensus_mode: 'batch', size: 4 });
    const a4 = await cello('POST', '/v2/cluster_op', { form: { action: 'apply', user_id: 'xxx', consensus_plugin: 'pbft', consensus_mode: 'batch', size: '4', allow_multiple: 'False' } });
    expect(a4.body.data.id).toBe(a3.body.data.id);

    // POST /clusters {consensus_plugin:pbft, consensus_mode:classic, size:4, user:""}: the free ones of that type.
    const l1 = await cello('POST', '/v2/clusters', { json: { consensus_plugin: 'pbft', consensus_mode: 'classic', size: 4, user: '' } });
    expect(l1.body.status).toBe('OK');
    expect(l1.body.data.map((c: any) => c.name)).toEqual(['cc']);
    // POST /clusters {consensus_plugin:pbft, consensus_mode:classic, size:4}
    const l2 = await cello('POST', '/v2/clusters', { json: { consensus_plugin: 'pbft', consensus_mode: 'classic', size: 4 } });
    expect(l2.body.data.map((c: any) => c.name)).toEqual(['cc']);
    // GET /clusters?user_id=xxx  and  POST /clusters {user_id:xxx}
    const l3 = await cello('GET', '/v2/clusters?user_id=xxx');
    expect(l3.body.data.map((c: any) => c.id)).toEqual([a3.body.data.id]);
    const l4 = await cello('POST', '/v2/clusters', { json: { user_id: 'xxx' } });
    expect(l4.body.data.map((c: any) => c.id)).toEqual([a3.body.data.id]);
    const l5 = await cello('POST', '/v2/clusters', { form: { user_id: 'xxx' } });
    expect(l5.body.data.map((c: any) => c.id)).toEqual([a3.body.data.id]);

    // GET /cluster/xxxxxxx: no such cluster, Cello's 404 code in a FAIL envelope.
    const g0 = await cello('GET', '/v2/cluster/xxxxxxx');
    expect(g0).toEqual({ http: 400, body: { code: 404, data: '', error: 'cluster not found with id=xxxxxxx', status: 'FAIL' } });
    const g1 = await cello('GET', `/v2/cluster/${a1.body.data.id}`);
    expect(g1.body.data).toMatchObject({ id: a1.body.data.id, user_id: 'xxxx', status: 'running', health: expect.any(String), release_ts: '' });

    // GET /cluster_op?action=start&cluster_id=xxx  and the POST form; stop and restart likewise.
    for (const act of ['stop', 'start', 'restart']) {
      const g = await cello('GET', `/v2/cluster_op?action=${act}&cluster_id=${a3.body.data.id}`);
      expect(g.body, act).toEqual({ code: 200, data: '', error: '', status: 'OK' });
      const p = await cello('POST', '/v2/cluster_op', { json: { action: act, cluster_id: a3.body.data.id } });
      expect(p.body.status, act).toBe('OK');
    }
    expect((await cello('GET', `/v2/cluster/${a3.body.data.id}`)).body.data.status).toBe('running');
    const stopped = await cello('GET', `/v2/cluster_op?action=stop&cluster_id=${a1.body.data.id}`);
    expect(stopped.body.status).toBe('OK');
    expect((await cello('GET', `/v2/cluster/${a1.body.data.id}`)).body.data).toMatchObject({ status: 'stopped', health: '' });

    // GET /cluster_op?action=release?cluster_id=xxxx: verbatim, that id does not exist.
    const r0 = await cello('GET', '/v2/cluster_op?action=release?cluster_id=xxxx');
    expect(r0).toEqual({ http: 400, body: { code: 404, data: '', error: 'cluster not found with id=xxxx', status: 'FAIL' } });
    // ... and with a real id: async, back in the free pool (running again) once done.
    const r1 = await cello('GET', `/v2/cluster_op?action=release?cluster_id=${a1.body.data.id}`);
    expect(r1).toEqual({ http: 200, body: { code: 200, data: '', error: '', status: 'OK' } });
    const freed = await waitReleased(a1.body.data.name);
    expect(freed.status).toBe('RUNNING');
    // POST /cluster_op {action:release, cluster_id:xxxxxxxx}
    const r2 = await cello('POST', '/v2/cluster_op', { json: { action: 'release', cluster_id: a3.body.data.id } });
    expect(r2.body.status).toBe('OK');
    await waitReleased(a3.body.data.name);
    // POST /cluster_op {action:release, user_id:xxxxxxxx}: all of a user's clusters.
    await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'xxx', allow_multiple: false } });
    await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'xxx', allow_multiple: true } });
    expect((await cello('GET', '/v2/clusters?user_id=xxx')).body.data).toHaveLength(2);
    const r3 = await cello('POST', '/v2/cluster_op', { form: { action: 'release', user_id: 'xxx' } });
    expect(r3.body.status).toBe('OK');
    await waitFor(() => cello('GET', '/v2/clusters?user_id=xxx'), (r) => r.body.data.length === 0, 60_000, 'all of xxx released');
    await waitFor(() => cello('POST', '/v2/clusters', { json: { user: '' } }), (r) => r.body.data.length === 4, 60_000, 'pool free again');

    // Deprecated spellings.
    const d1 = await cello('GET', '/v2/cluster_apply?user_id=old&size=3');
    expect(d1.body.data).toMatchObject({ name: 'last', user_id: 'old' });
    expect((await cello('POST', '/v2/cluster_release', { json: { user_id: 'old' } })).body.status).toBe('OK');
    await waitReleased('last');
    expect((await cello('GET', '/v2/cluster_release')).body).toEqual({ code: 400, data: '', error: 'cluster_release without id', status: 'FAIL' });

    const doc = await fetch(`${gw.url}/v2/openapi.json`).then((r) => r.json()) as any;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v2/cluster_op', '/v2/clusters', '/v2/cluster/{id}']));
  });

  it('answers bad input with Cello\'s FAIL envelope and changes nothing', async () => {
    const before = (await cello('GET', '/v2/clusters')).body.data;
    const cases: [string, Awaited<ReturnType<typeof cello>>, number, string][] = [
      ['unknown action', await cello('GET', '/v2/cluster_op?action=explode&cluster_id=x'), 400, 'Unknown action type'],
      ['no action', await cello('POST', '/v2/cluster_op', { json: { user_id: 'u' } }), 400, 'Unknown action type'],
      ['missing user_id', await cello('GET', '/v2/cluster_op?action=apply'), 400, 'cluster_apply without user_id'],
      ['missing cluster_id', await cello('POST', '/v2/cluster_op', { json: { action: 'stop' } }), 400, 'No cluster_id is given'],
      ['unknown cluster_id', await cello('POST', '/v2/cluster_op', { json: { action: 'stop', cluster_id: 'nope' } }), 404, 'cluster not found with id=nope'],
      ['unknown cluster_id (uuid)', await cello('GET', '/v2/cluster_op?action=start&cluster_id=00000000-0000-0000-0000-000000000000'), 404, 'cluster not found with id=00000000-0000-0000-0000-000000000000'],
      ['size not a number', await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'u', size: 'four' } }), 400, 'Invalid cluster_size'],
      ['size negative', await cello('GET', '/v2/cluster_op?action=apply&user_id=u&size=-4'), 400, 'Invalid cluster_size'],
      ['allow_multiple not boolean', await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'u', allow_multiple: 'perhaps' } }), 400, 'Invalid allow_multiple'],
      ['user_id an object', await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: { a: 1 } } }), 400, 'Invalid user_id'],
      ['unknown plugin', await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'u', consensus_plugin: 'bogus' } }), 400, 'Invalid consensus_plugin'],
      ['unknown mode', await cello('GET', '/v2/cluster_op?action=apply&user_id=u&consensus_mode=bogus'), 400, 'Invalid consensus_mode'],
      ['malformed JSON', await fetch(`${gw.url}/v2/cluster_op`, { method: 'POST', headers: { authorization: `Bearer ${tok.admin}`, 'content-type': 'application/json' }, body: '{action:apply' }).then(async (r) => ({ http: r.status, body: await r.json() as any })), 400, ''],
      ['no token', await cello('GET', '/v2/cluster_op?action=apply&user_id=u', undefined, 'bad-token'), 401, ''],
    ];
    for (const [label, r, code, error] of cases) {
      expect(r.http, label).toBe(400);
      expect(r.body.status, label).toBe('FAIL');
      expect(r.body.code, label).toBe(code);
      if (error) expect(r.body.error, label).toBe(error);
      else expect(r.body.error, label).not.toBe('');
    }
    expect((await cello('GET', '/v2/clusters')).body.data).toEqual(before);
  });

  it('says "No available res for {user}" when nothing matches', async () => {
    const r = await cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'zed', consensus_plugin: 'raft' } });
    expect(r).toEqual({ http: 400, body: { code: 400, data: '', error: 'No available res for zed', status: 'FAIL' } });
  });

  it('gives the last free cluster to exactly one of two racing users', async () => {
    for (let round = 0; round < 3; round++) {
      const [x, y] = await Promise.all([
        cello('GET', `/v2/cluster_op?action=apply&user_id=racer1&consensus_plugin=kafka`),
        cello('POST', '/v2/cluster_op', { json: { action: 'apply', user_id: 'racer2', consensus_plugin: 'kafka' } }),
      ]);
      const outcomes = [x, y].map((r) => r.body.status).sort();
      expect(outcomes, `round ${round}`).toEqual(['FAIL', 'OK']);
      const loser = x.body.status === 'FAIL' ? { r: x, user: 'racer1' } : { r: y, user: 'racer2' };
      expect(loser.r.body.error).toBe(`No available res for ${loser.user}`);
      const winner = (x.body.status === 'OK' ? x : y).body.data;
      expect(winner.name).toBe('last');
      expect((await clusterByName('last')).userId).toBe(winner.user_id);
      await cello('POST', '/v2/cluster_op', { json: { action: 'release', cluster_id: winner.id } });
      await waitReleased('last');
    }
    // Many applicants at once over GraphQL: still exactly one lease.
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      admin('mutation($i: ApplyClusterInput!) { applyCluster(input: $i) { id userId } }', { i: { userId: `many${i}`, consensusPlugin: 'kafka' } })));
    expect(results.filter((r) => r.body.data?.applyCluster).length).toBe(1);
    expect(results.filter((r) => r.body.errors?.[0]?.message.startsWith('No available res for many')).length).toBe(7);
    await admin('mutation { releaseCluster(clusterId: "last") { id } }');
    await waitReleased('last');
  });

  it('lets users see and act on their own clusters only; admins on any', async () => {
    const alice = as('alice'); const bob = as('bob'); const carol = as('carol');
    const mine = await alice(`mutation { applyCluster(input: { consensusMode: "classic" }) { ${CLUSTER} } }`);
    expect(mine.body.errors).toBeUndefined();
    const c = mine.body.data.applyCluster;
    expect(c).toMatchObject({ name: 'cc', userId: 'alice' });
    // Bob: cannot see it, stop it, release it, or apply in alice's name.
    expect((await bob(`{ cluster(id: "${c.id}") { id } }`)).body.data.cluster).toBeNull();
    const bobList = (await bob('{ clusters { edges { node { name userId } } } }')).body.data.clusters.edges.map((e: any) => e.node);
    expect(bobList.some((n: any) => n.name === 'cc')).toBe(false);
    expect(bobList.every((n: any) => n.userId === null)).toBe(true); // free ones are visible
    expect((await bob(`mutation { stopCluster(id: "${c.id}") { id } }`)).body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await bob(`mutation { releaseCluster(clusterId: "${c.id}") { id } }`)).body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await bob('mutation { applyCluster(input: { userId: "alice" }) { id } }')).body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await bob('mutation { createCluster(input: { name: "x", size: 1 }) { id } }')).body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Through Cello too: bob's token names alice.
    const viaRest = await cello('POST', '/v2/cluster_op', { json: { action: 'release', user_id: 'alice' } }, tok.bob);
    expect(viaRest.body).toMatchObject({ status: 'FAIL', code: 403 });
    const viaRestStop = await cello('GET', `/v2/cluster_op?action=stop&cluster_id=${c.id}`, undefined, tok.bob);
    expect(viaRestStop.body).toMatchObject({ status: 'FAIL', code: 404 });
    // Carol (reader) may look but not lease.
    expect((await carol('mutation { applyCluster(input: {}) { id } }')).body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await carol(`{ cluster(id: "${c.id}") { id } }`)).body.data.cluster).toBeNull();
    // Alice sees and stops her own; the admin sees it and starts it again.
    expect((await alice(`{ cluster(id: "${c.id}") { userId } }`)).body.data.cluster.userId).toBe('alice');
    expect((await alice(`mutation { stopCluster(id: "${c.id}") { status health } }`)).body.data.stopCluster).toEqual({ status: 'STOPPED', health: '' });
    expect((await admin(`mutation { startCluster(id: "${c.id}") { status } }`)).body.data.startCluster.status).toBe('RUNNING');
    // Admin-only pool management.
    const created = await admin('mutation { createCluster(input: { name: "tmp1", size: 2, consensusPlugin: "solo" }) { name size userId } }');
    expect(created.body.data.createCluster).toEqual({ name: 'tmp1', size: 2, userId: null });
    expect((await admin('mutation { deleteCluster(id: "tmp1") }')).body.data.deleteCluster).toBe(true);
    expect((await admin(`mutation { deleteCluster(id: "${c.id}") }`)).body.errors?.[0]?.extensions?.code).toBe('INVALID_STATE');
    // Alice releases by user.
    const rel = await alice('mutation { releaseCluster { name releaseStatus } }');
    expect(rel.body.data.releaseCluster).toEqual([{ name: 'cc', releaseStatus: 'RELEASING' }]);
    await waitReleased('cc');
  });

  it('runs a cluster holder\'s job on the cluster\'s worker; stop pauses it, start resumes it, release moves it to the shared pool', async () => {
    const alice = as('alice');
    const held = (await alice(`mutation { applyCluster(input: { consensusPlugin: "pbft", consensusMode: "batch", size: 4 }) { ${CLUSTER} } }`)).body.data.applyCluster;
    expect(['ca', 'cb']).toContain(held.name);
    const clusterWorker = held.workers[0] as string;
    expect(clusterWorker).toBeTruthy();

    const job = await alice(`mutation($i: JobInput!) { createJob(input: $i) { id } }`, {
      i: { name: 'on-cluster', type: 'SYNCHRONOUS', source: { ...connInput(src), kind: 'POSTGRES' }, destination: { ...connInput(dst), kind: 'POSTGRES' }, tables: [{ schema: 'public' }] },
    });
    expect(job.body.errors).toBeUndefined();
    const id = job.body.data.createJob.id;
    const tasksQ = `query($id: ID!) { job(id: $id) { status statusReason tasks { kind name status nodeId queue placement } } }`;
    const jobNow = async () => (await alice(tasksQ, { id })).body.data.job;
    const count = async () => (await dst.query('SELECT count(*)::int AS n FROM public.items'))[0].n as number;

    await waitFor(count, (n) => n === 500, 60_000, 'snapshot on the cluster');
    const running = await waitFor(jobNow, (j: any) => j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.nodeId), 30_000, 'task nodes');
    for (const t of running.tasks) {
      expect(t.queue, t.name).toBe(`tasks-cluster-${held.name}`);
      expect(t.placement, t.name).toContain(`cluster ${held.name}`);
      if (t.nodeId) expect(t.nodeId, t.name).toBe(clusterWorker);
    }
    await src.query(`INSERT INTO items SELECT g, 'more ' || g FROM generate_series(501, 600) g`);
    await waitFor(count, (n) => n === 600, 60_000, 'stream on the cluster');

    // Stop: the job pauses (positions kept) and the cluster queue takes nothing.
    const stopped = (await alice(`mutation { stopCluster(id: "${held.id}") { status health } }`)).body.data.stopCluster;
    expect(stopped).toEqual({ status: 'STOPPED', health: '' });
    const paused = await jobNow();
    expect(paused.status).toBe('PAUSED');
    expect(paused.statusReason).toBe(`cluster ${held.name} stopped`);
    const queue = new Queue(clusterQueueName(held.name), { connection: new Redis(gw.config.redisUrl, { maxRetriesPerRequest: null }) as unknown as ConnectionOptions, prefix: bullPrefix(gw.config.queuePrefix) });
    await queue.add(TaskKind.Noop, { kind: TaskKind.Noop, taskId: 'noop-while-stopped', steps: 1, stepMs: 1 }, { jobId: 'noop-while-stopped' });
    await src.query(`INSERT INTO items SELECT g, 'stopped ' || g FROM generate_series(601, 650) g`);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await count()).toBe(600);
    expect(await (await queue.getJob('noop-while-stopped'))!.getState()).toBe('waiting');

    // Start: both resume with nothing lost.
    expect((await alice(`mutation { startCluster(id: "${held.id}") { status } }`)).body.data.startCluster.status).toBe('RUNNING');
    await waitFor(async () => (await queue.getJob('noop-while-stopped'))?.getState(), (s) => s === 'completed', 30_000, 'noop after start');
    await waitFor(count, (n) => n === 650, 60_000, 'rows after start');
    expect((await jobNow()).status).toBe('RUNNING');
    await queue.close();

    // Release while the job runs: it moves to the shared pool and keeps replicating.
    await src.query(`INSERT INTO items SELECT g, 'released ' || g FROM generate_series(651, 700) g`);
    const rel = await alice(`mutation { releaseCluster(clusterId: "${held.id}") { releaseStatus } }`);
    expect(rel.body.data.releaseCluster[0].releaseStatus).toBe('RELEASING');
    const freed = await waitReleased(held.name);
    expect(freed.releaseProgress).toBe(100);
    const moved = await waitFor(jobNow, (j: any) => j.status === 'RUNNING' && j.tasks.filter((t: any) => t.kind === 'capture' || t.kind === 'apply').every((t: any) => t.queue === 'tasks' && t.nodeId === gw.app.services.nodes.id), 60_000, 'tasks on the shared pool');
    expect(moved.tasks.find((t: any) => t.kind === 'capture').placement).toBe('shared pool');
    await src.query(`INSERT INTO items SELECT g, 'after ' || g FROM generate_series(701, 750) g`);
    await waitFor(count, (n) => n === 750, 60_000, 'rows after release');
    const [s, d] = await Promise.all([src.query('SELECT id, name FROM items ORDER BY id'), dst.query('SELECT id, name FROM items ORDER BY id')]);
    expect(d).toEqual(s);
    await alice(`mutation { deleteJob(id: "${id}") }`);
  });

  it('honours an explicit cluster target in a task\'s node hint', async () => {
    const placement = await gw.app.services.clusters.placementFor('nobody', 'cluster:cb');
    expect(placement).toEqual({ queue: 'tasks-cluster-cb', placement: 'cluster cb (requested)' });
    const byNode = await gw.app.services.clusters.placementFor('nobody', workerA.services.nodes.id);
    expect(byNode.queue).toBe('tasks-cluster-ca');
    const unknown = await gw.app.services.clusters.placementFor('nobody', '1eda45f8-df9b-1541-9009-83952e7b672a');
    expect(unknown).toEqual({ queue: 'tasks', placement: 'shared pool (requested node 1eda45f8-df9b-1541-9009-83952e7b672a is a placement hint only)' });
  });

  it('serves the same API on a legacy port of its own', async () => {
    const listener = await startLegacyListener({ name: 'cello', host: '127.0.0.1', port: 0, router: celloRouter(gw.app.gateway!.executor), logger: createLogger('silent') });
    try {
      const res = await fetch(`http://127.0.0.1:${listener.address.port}/v2/cluster/xxxxxxx`, { headers: { authorization: `Bearer ${tok.admin}` } });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ code: 404, data: '', error: 'cluster not found with id=xxxxxxx', status: 'FAIL' });
      const list = await fetch(`http://127.0.0.1:${listener.address.port}/v2/clusters?user=`, { headers: { authorization: `Bearer ${tok.admin}` } }).then((r) => r.json()) as any;
      expect(list.status).toBe('OK');
    } finally {
      await listener.close();
    }
  });

  it('streams cluster events to subscribers who may see them', async () => {
    const seen = (token: string) => {
      const client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0, connectionParams: { authorization: `Bearer ${token}` } });
      const events: any[] = [];
      const stop = client.subscribe({ query: 'subscription { clusterEvents { kind at cluster { name userId status } } }' }, {
        next: (v) => { events.push((v.data as any).clusterEvents); }, error: () => undefined, complete: () => undefined,
      });
      return { events, close: async () => { stop(); await client.dispose(); } };
    };
    const adminSub = seen(tok.admin);
    const bobSub = seen(tok.bob);
    await new Promise((r) => setTimeout(r, 500)); // both subscribed
    await admin('mutation { applyCluster(input: { userId: "alice", consensusPlugin: "kafka" }) { id } }');
    await admin('mutation { stopCluster(id: "last") { id } }');
    await waitFor(async () => adminSub.events.map((e) => e.kind), (k: string[]) => k.includes('APPLIED') && k.includes('STOPPED'), 10_000, 'admin events');
    expect(adminSub.events.find((e) => e.kind === 'APPLIED').cluster).toEqual({ name: 'last', userId: 'alice', status: 'RUNNING' });
    expect(bobSub.events.filter((e) => e.cluster.userId === 'alice')).toEqual([]);
    await admin('mutation { releaseCluster(clusterId: "last") { id } }');
    await waitReleased('last');
    await waitFor(async () => bobSub.events.map((e) => e.kind), (k: string[]) => k.includes('RELEASED'), 10_000, 'bob sees the cluster come back free');
    await adminSub.close(); await bobSub.close();
  });
});
