/**
 * Issue 14 item 11: every route of the five REST dialects answers what its
 * served OpenAPI document says. Real requests (successes and the main
 * errors) go to a real gateway with workers over the suite's private
 * PostgreSQL, MariaDB and Redis; each answer's status, content type and body
 * are checked against the document fetched from the same gateway
 * (test/support/openapi-check.ts, ajv). An undocumented status, media type
 * or a body off its schema fails, and so does an operation no request
 * reached.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import protobuf from 'protobufjs';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { untilCapturing } from '../../support/changefeed.ts';
import { gqlCreateConnection } from '../fate-flow/support.ts';
import { OpenApiChecker } from '../../support/openapi-check.ts';

const ENV = uniq('oaenv').replace(/_/g, '-');
const PROTO = 'application/transicator+protobuf';

interface Sent { json?: unknown; form?: Record<string, string>; raw?: string; headers?: Record<string, string> }
interface Got { status: number; text: string; body: Buffer; json(): any }

let gw: TestGateway;
let pgSrc: DbHandle; let pgOther: DbHandle; let maria: DbHandle; let mariaEmpty: DbHandle;
let dir: string;
let csBase: string;
const docs: Record<string, OpenApiChecker> = {};

/** One request, checked against the dialect's document; `expected` is the status this case is meant to produce. */
async function call(api: string, method: string, pathAndQuery: string, expected: number, sent: Sent = {}, base = gw.url): Promise<Got> {
  const headers: Record<string, string> = { ...sent.headers };
  let body: string | undefined;
  if (sent.json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(sent.json); }
  if (sent.form) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(sent.form).toString(); }
  if (sent.raw !== undefined) { headers['content-type'] ??= 'application/json'; body = sent.raw; }
  const res = await fetch(`${base}${pathAndQuery}`, { method, headers, body });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString('utf8');
  const pathname = new URL(`${base}${pathAndQuery}`).pathname;
  expect(docs[api]!.check(method, pathname, { status: res.status, contentType: res.headers.get('content-type'), body: buf }), `${method} ${pathAndQuery}`).toEqual([]);
  expect(res.status, `${method} ${pathAndQuery}: ${text.slice(0, 300)}`).toBe(expected);
  return { status: res.status, text, body: buf, json: () => JSON.parse(text) };
}

beforeAll(async () => {
  gw = await startTestGateway({
    changeserverFeed: ENV, changeserverPort: 0,
    clusters: [{ name: 'oa', size: 2, consensus_plugin: 'pbft', consensus_mode: 'batch' }, { name: 'ob', size: 2, consensus_plugin: 'pbft', consensus_mode: 'batch' }],
  } as never);
  csBase = `http://127.0.0.1:${gw.app.changeserverAddress()!.port}`;
  [pgSrc, pgOther, maria, mariaEmpty] = await Promise.all([
    pgDatabase(inject('pgUrl'), uniq('oa_pg')), pgDatabase(inject('pgUrl'), uniq('oa_pg2')),
    mariaDatabase(inject('mariaUrl'), uniq('oa_maria')), mariaDatabase(inject('mariaUrl'), uniq('oa_empty')),
  ]);
  dir = mkdtempSync(path.join(tmpdir(), 'oapi-'));
  for (const [name, docPath, base] of [
    ['udup', '/v1/openapi.json', gw.url], ['cello', '/v2/openapi.json', gw.url], ['connection-service', '/connection-service/openapi.json', gw.url],
    ['fate-flow', '/v1/fate-flow/openapi.json', gw.url], ['changeserver', '/openapi.json', csBase],
  ] as const) {
    const res = await fetch(`${base}${docPath}`);
    expect(res.status).toBe(200);
    docs[name] = new OpenApiChecker(name, await res.json() as never);
  }
}, 120_000);

afterAll(async () => {
  await gw?.close();
  await Promise.all([pgSrc?.close(), pgOther?.close(), maria?.close(), mariaEmpty?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('OpenAPI documents describe every answer', () => {
  it('every response of every document has a schema, and every operation a success body', () => {
    expect(Object.values(docs).flatMap((d) => d.documentProblems())).toEqual([]);
  });

  it('connection service and changeserver: successes, errors, JSON and protobuf change lists', async () => {
    const S = 'connection-service';
    const pgUrl = (db: DbHandle) => `postgres://${db.user}@${db.host}:${db.port}/${db.database}`;
    await pgSrc.query(`CREATE TABLE orders (id int primary key, note text, at timestamptz, big int8, _change_selector text)`);
    const created = await call(S, 'POST', '/createDatabaseConnection', 201, { form: { connectionString: pgUrl(pgSrc), environmentId: ENV } });
    expect(created.json()).toMatchObject({ environmentId: ENV, created: true });
    await call(S, 'POST', '/createDatabaseConnection', 200, { json: { connectionString: pgUrl(pgSrc), environmentId: ENV } });
    await call(S, 'POST', '/createDatabaseConnection', 409, { json: { connectionString: pgUrl(pgOther), environmentId: ENV } });
    await call(S, 'POST', '/createDatabaseConnection', 400, { form: { connectionString: pgUrl(pgSrc) } });
    await call(S, 'POST', '/createDatabaseConnection', 400, { form: { connectionString: 'sqlserver://x/y', environmentId: 'other-env' } });
    await call(S, 'POST', '/createDatabaseConnection', 422, { form: { connectionString: `postgres://nobody@127.0.0.1:1/${pgSrc.database}`, environmentId: 'unreachable-env' } });
    await call(S, 'POST', '/createDatabaseConnection', 400, { raw: '{"connectionString": ' });

    const cq = await call(S, 'POST', '/createCachedQuery', 201, { form: { environmentId: ENV, sqlQuery: 'SELECT count(*) AS n FROM orders' } });
    await call(S, 'POST', '/createCachedQuery', 400, { form: { environmentId: ENV, sqlQuery: 'DELETE FROM orders' } });
    await call(S, 'POST', '/createCachedQuery', 404, { form: { environmentId: 'no-such-env', sqlQuery: 'SELECT 1' } });
    await call(S, 'POST', '/createCachedQuery', 400, { form: { environmentId: ENV } });
    await call(S, 'GET', `/cachedQueries/${cq.json().id}`, 200);
    await call(S, 'GET', `/cachedQueries/${randomUUID()}`, 404);
    await call(S, 'POST', '/checkJobStatus', 201, { form: { environmentId: ENV } });
    await call(S, 'POST', '/checkJobStatus', 404, { form: { environmentId: 'no-such-env' } });
    await call(S, 'POST', '/checkJobStatus', 400, { form: {} });
    await call(S, 'GET', `/environments/${ENV}`, 200);
    await call(S, 'GET', '/environments/no-such-env', 404);

    // changeserver over the environment's feed (CHANGESERVER_FEED), on the gateway and on its own listener.
    const C = 'changeserver';
    await untilCapturing(pgSrc, 'orders', gw.url, ENV, (n) => `INSERT INTO orders (id, note, _change_selector) VALUES (${-n}, 'probe', 'probe')`);
    await pgSrc.query(`INSERT INTO orders VALUES (1, 'one', '2024-01-02 03:04:05.5+00', 9007199254740993, 'a')`);
    await pgSrc.query(`UPDATE orders SET note = 'uno' WHERE id = 1`);
    await pgSrc.query(`DELETE FROM orders WHERE id = 1`);
    await waitFor(() => fetch(`${gw.url}/changes?scope=a`).then((r) => r.json()), (b: any) => b.changes?.length === 3, 30_000, 'three changes');
    for (const base of [gw.url, csBase]) {
      const list = (await call(C, 'GET', '/changes?scope=a', 200, {}, base)).json();
      expect(list.changes.map((c: any) => c.operation)).toEqual([1, 2, 3]);
      const pb = await call(C, 'GET', '/changes?scope=a&scope=probe', 200, { headers: { accept: PROTO } }, base);
      const type = protobuf.parse('syntax = "proto2"; package t; message M { repeated bytes changes = 3; }').root.lookupType('t.M');
      expect((type.decode(pb.body) as any).changes.length).toBeGreaterThan(3);
      await call(C, 'GET', `/feeds/${ENV}/changes?selector=a&limit=1`, 200, {}, base);
      await call(C, 'GET', `/feeds/${ENV}/changes?scope=a&block=1&since=${list.lastSequence}`, 200, {}, base);
      await call(C, 'GET', '/changes', 400, {}, base);
      await call(C, 'GET', '/changes?scope=a&limit=x', 400, {}, base);
      await call(C, 'GET', '/changes?scope=a', 415, { headers: { accept: 'text/html' } }, base);
      await call(C, 'GET', '/feeds/no-such-feed/changes?scope=a', 404, {}, base);
    }

    await call(S, 'POST', '/deleteDatabaseConnection', 201, { form: { environmentId: ENV } });
    await call(S, 'POST', '/deleteDatabaseConnection', 404, { form: { environmentId: ENV } });
    await call(S, 'POST', '/deleteDatabaseConnection', 400, { form: {} });
    await call(S, 'GET', '/connection-service/openapi.json', 200);
  }, 120_000);

  it('Udup: jobs, nodes and status endpoints, plain-text errors', async () => {
    const U = 'udup';
    const u = new URL(inject('mariaUrl'));
    const conn = { Host: u.hostname, Port: Number(u.port), User: 'root', Password: '' };
    const name = uniq('oajob');
    const job = (extra: Record<string, unknown> = {}) => ({
      Name: name, Type: 'synchronous', Stop: true,
      Tasks: [
        { Type: 'Src', Driver: 'MySQL', Config: { Gtid: '', ParallelWorkers: 2, ReplicateDoDb: [{ TableSchema: mariaEmpty.database }], ConnectionConfig: conn } },
        { Type: 'Dest', Driver: 'MySQL', Config: { Gtid: '', ParallelWorkers: 2, ConnectionConfig: conn } },
      ],
      ...extra,
    });
    await call(U, 'POST', '/v1/jobs', 200, { json: job() });
    await call(U, 'PUT', '/v1/jobs', 409, { json: job() });
    await call(U, 'POST', '/v1/jobs', 400, { json: job({ Name: '' }) });
    await call(U, 'POST', '/v1/jobs', 400, { raw: '{"Name":' });
    const list = (await call(U, 'GET', '/v1/jobs?pretty', 200)).json();
    const id = list.find((j: any) => j.Name === name).ID;
    await call(U, 'GET', `/v1/jobs?prefix=${name}&index=1&wait=1s`, 200);
    await call(U, 'GET', '/v1/jobs?index=x', 400);
    const one = (await call(U, 'GET', `/v1/job/${id}`, 200)).json();
    expect(one.Tasks.map((t: any) => t.Config.ConnectionConfig.Password)).toEqual(['*', '*']);
    await call(U, 'GET', `/v1/job/${name}`, 200);
    await call(U, 'GET', '/v1/job/999999', 404);
    await call(U, 'PUT', `/v1/job/${id}`, 200, { json: job({ Tasks: job().Tasks.map((t) => ({ ...t, Config: { ...t.Config, MsgBytesLimit: 40960 } })) }) });
    await call(U, 'PUT', `/v1/job/${id}`, 409, { json: job({ Tasks: job().Tasks.map((t) => ({ ...t, Config: { ...t.Config, ParallelWorkers: 3 } })) }) });
    await call(U, 'POST', `/v1/job/${id}`, 400, { json: job({ Type: 'migration' }) });
    await call(U, 'POST', `/v1/job/${id}/pause`, 200);
    await call(U, 'PUT', '/v1/job/999999/pause', 404);
    await call(U, 'POST', `/v1/job/${id}/resume`, 200);
    await call(U, 'PUT', `/v1/job/${id}/resume`, 200);
    await call(U, 'POST', '/v1/job/999999/resume', 404);
    await call(U, 'PUT', `/v1/job/${id}/pause`, 200);
    const nodes = (await call(U, 'GET', '/v1/nodes', 200)).json();
    await call(U, 'GET', `/v1/node/${nodes[0].ID}`, 200);
    await call(U, 'GET', '/v1/node/no-such-node', 404);
    await call(U, 'GET', '/v1/members', 200);
    await call(U, 'GET', '/v1/leader', 200);
    await call(U, 'GET', '/v1/peers?pretty=1', 200);
    await call(U, 'GET', '/v1/openapi.json', 200);
    await call(U, 'DELETE', `/v1/job/${id}`, 200);
    await call(U, 'DELETE', `/v1/job/${id}`, 404);
  }, 120_000);

  it('Cello: apply, list, read, release; FAIL envelopes', async () => {
    const C = 'cello';
    const applied = (await call(C, 'GET', '/v2/cluster_op?action=apply?user_id=u1', 200)).json();
    expect(applied.data.user_id).toBe('u1');
    const second = (await call(C, 'POST', '/v2/cluster_apply', 200, { json: { user_id: 'u2', consensus_plugin: 'pbft' } })).json();
    await call(C, 'GET', '/v2/cluster_apply?user_id=u3', 400);
    await call(C, 'POST', '/v2/cluster_op', 400, { form: { action: 'apply', user_id: 'u3' } });
    await call(C, 'GET', '/v2/cluster_op?action=bogus', 400);
    await call(C, 'GET', '/v2/clusters', 200);
    await call(C, 'POST', '/v2/clusters', 200, { json: { user_id: 'u1' } });
    await call(C, 'GET', '/v2/clusters?size=x', 400);
    await call(C, 'GET', `/v2/cluster/${applied.data.name}`, 200);
    await call(C, 'GET', '/v2/cluster/no-such-cluster', 400);
    await call(C, 'GET', '/v2/cluster_release?user_id=u1', 200);
    await call(C, 'POST', '/v2/cluster_release', 400, { json: {} });
    await call(C, 'POST', '/v2/cluster_op', 200, { json: { action: 'release', cluster_id: second.data.id } });
    await call(C, 'GET', '/v2/openapi.json', 200);
  }, 120_000);

  it('FATE-Flow: data, jobs, tracking, pipeline, models and tables in the envelope', async () => {
    const F = 'fate-flow';
    await maria.query('CREATE TABLE orders (id int PRIMARY KEY, city varchar(20), amount decimal(10,2))');
    await maria.query(`INSERT INTO orders VALUES (1, 'Paris', 10.50), (2, 'Oslo', 300.00), (3, 'Lima', 42.00)`);
    await gqlCreateConnection(gw.url, { name: 'oa-src', kind: 'MYSQL', host: maria.host, port: maria.port, user: maria.user, password: maria.password, database: maria.database });
    await gqlCreateConnection(gw.url, { name: 'oa-dst', kind: 'POSTGRES', host: pgOther.host, port: pgOther.port, user: pgOther.user, password: pgOther.password, database: pgOther.database });
    const dsl = { components: { reader_0: { module: 'Reader', output: { data: ['data'] } }, writer_0: { module: 'Writer', input: { data: { data: ['reader_0.data'] } }, output: { data: ['data'] } } } };
    const conf = {
      initiator: { role: 'local', party_id: 0 }, role: { local: [0] },
      component_parameters: { common: { reader_0: { table: { namespace: 'oa-src', name: 'orders' } }, writer_0: { table: { namespace: 'oa-dst', name: 'orders_copy' }, mode: 'replace' } } },
    };
    const submitted = (await call(F, 'POST', '/v1/job/submit', 200, { json: { job_dsl: dsl, job_runtime_conf: conf } })).json();
    const jobId = submitted.jobId as string;
    expect(submitted.retcode).toBe(0);
    expect((await call(F, 'POST', '/v1/job/submit', 200, { json: { job_runtime_conf: conf } })).json().retcode).toBe(101);
    await call(F, 'POST', '/v1/job/submit', 400, { raw: '{"job_dsl":' });
    await waitFor(() => fetch(`${gw.url}/v1/job/query`, { method: 'POST', body: JSON.stringify({ job_id: jobId }) }).then((r) => r.json()), (b: any) => b.data?.[0]?.f_status === 'success', 60_000, 'FATE job success');

    const T = { job_id: jobId, role: 'local', party_id: 0, component_name: 'reader_0' };
    await call(F, 'POST', '/v1/job/query', 200, { json: { job_id: jobId } });
    await call(F, 'POST', '/v1/job/query', 200, { form: { job_id: 'no-such-job' } });
    await call(F, 'POST', '/v1/job/config', 200, { json: { job_id: jobId } });
    await call(F, 'POST', '/v1/job/config', 200, { json: { job_id: 'no-such-job' } });
    await call(F, 'POST', '/v1/job/log', 200, { json: { job_id: jobId } });
    await call(F, 'POST', '/v1/job/log', 200, { json: { job_id: 'no-such-job' } });
    await call(F, 'POST', '/v1/job/task/query', 200, { json: { job_id: jobId } });
    await call(F, 'POST', '/v1/job/task/query', 200, { json: { job_id: 'no-such-job' } });
    await call(F, 'POST', '/v1/tracking/job/data_view', 200, { json: { job_id: jobId } });
    await call(F, 'POST', '/v1/tracking/job/data_view', 200, { json: { job_id: 'no-such-job' } });
    await call(F, 'POST', '/v1/tracking/component/metric/all', 200, { json: T });
    await call(F, 'POST', '/v1/tracking/component/metrics', 200, { json: T });
    const metrics = (await call(F, 'POST', '/v1/tracking/component/metrics', 200, { json: { ...T, component_name: 'writer_0' } })).json().data ?? {};
    const [ns, names] = Object.entries(metrics as Record<string, string[]>)[0] ?? ['stats', ['rows_out']];
    await call(F, 'POST', '/v1/tracking/component/metric_data', 200, { json: { ...T, component_name: 'writer_0', metric_namespace: ns, metric_name: names[0] } });
    await call(F, 'POST', '/v1/tracking/component/metric_data', 200, { json: { ...T, metric_namespace: 'none', metric_name: 'none' } });
    await call(F, 'POST', '/v1/tracking/component/parameters', 200, { json: T });
    await call(F, 'POST', '/v1/tracking/component/parameters', 200, { json: { job_id: jobId } });
    await call(F, 'POST', '/v1/tracking/component/output/model', 200, { json: T });
    await call(F, 'POST', '/v1/tracking/component/output/data', 200, { json: T });
    await call(F, 'POST', '/v1/tracking/component/output/data', 200, { json: { ...T, component_name: 'nope' } });
    await call(F, 'POST', '/v1/pipeline/dag/dependency', 200, { json: { job_id: jobId } });
    await call(F, 'POST', '/v1/pipeline/dag/dependency', 200, { json: {} });

    const model = { namespace: uniq('oa-models'), name: 'copy', version: 'v1' };
    expect((await call(F, 'POST', '/v1/model/load', 200, { json: { model: { ...model, job_id: jobId } } })).json().retcode).toBe(0);
    expect((await call(F, 'POST', '/v1/model/load', 200, { json: {} })).json().retcode).toBe(101);
    await call(F, 'POST', '/v1/model/version', 200, { json: { namespace: model.namespace } });
    await call(F, 'POST', '/v1/model/version', 200, { json: { namespace: 'no-such-namespace' } });
    const online = (await call(F, 'POST', '/v1/model/online', 200, { json: { model } })).json();
    await call(F, 'POST', '/v1/model/online', 200, { json: { model: { namespace: model.namespace, name: 'copy', version: 'v9' } } });
    await call(F, 'POST', '/v1/job/stop', 200, { json: { job_id: online.jobId } });
    await call(F, 'POST', '/v1/job/stop', 200, { json: { job_id: 'no-such-job' } });

    await call(F, 'POST', '/v1/table/table_info', 200, { json: { namespace: 'oa-dst', table_name: 'orders_copy' } });
    await call(F, 'POST', '/v1/table/table_info', 200, { json: { namespace: 'oa-dst', table_name: 'made', create: true, schema: { sid: 'id', header: 'x0,x1' } } });
    await call(F, 'POST', '/v1/table/table_info', 200, { json: { table_name: 'orders_copy' } });
    const csv = path.join(dir, 'up.csv');
    writeFileSync(csv, 'id,name\n1,a\n2,b\n');
    expect((await call(F, 'POST', '/v1/data/upload', 200, { json: { file: csv, head: 1, partition: 1, namespace: 'oa-dst', table_name: 'uploaded' } })).json().retcode).toBe(0);
    expect((await call(F, 'POST', '/v1/data/upload', 200, { json: { namespace: 'oa-dst', table_name: 'uploaded' } })).json().retcode).toBe(101);
    expect((await call(F, 'POST', '/v1/data/download', 200, { json: { output_path: path.join(dir, 'down.csv'), namespace: 'oa-dst', table_name: 'orders_copy' } })).json().retcode).toBe(0);
    expect((await call(F, 'POST', '/v1/data/download', 200, { json: { namespace: 'oa-dst', table_name: 'orders_copy' } })).json().retcode).toBe(101);
    await call(F, 'GET', '/v1/fate-flow/openapi.json', 200);
  }, 180_000);

  it('reached every operation of every document with a documented answer', () => {
    const missing = Object.values(docs).flatMap((d) => d.operations().filter((k) => !d.covered.has(k)).map((k) => `${d.name} ${k}`));
    expect(missing).toEqual([]);
  });
});
