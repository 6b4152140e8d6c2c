/**
 * Udup REST API v1 against a real gateway: the seed's POST /v1/jobs body
 * (verbatim but for the connection values) replicating between two private
 * MariaDB servers, plain-text errors without half-created jobs, 405, ?pretty,
 * blocking reads, node/status endpoints, and no password in any answer.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import mysql from 'mysql2/promise';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { waitFor } from '../../support/databases.ts';
import { freePort, startMariadb, type PrivateServer } from '../../../src/devtools/private-servers.ts';

/** The seed's example request, copied exactly. */
const SEED_BODY = ` {
     "Name": "exam-7-9", 
     "Type": "synchronous",  
     "Tasks": [
         {
             "Type": "Src", 
             "NodeId": "1eda45f8-df9b-1541-9009-83952e7b672a", 
             "Driver": "MySQL", 
             "Config": {
                 "Gtid": "", 
                 "ParallelWorkers": 4,
                 "ReplChanBufferSize": 600, 
                 "MsgBytesLimit": 20480,
                 "ReplicateDoDb": [
                     {
                         "TableSchema": "sbtest"
                     }
                 ], 
                 "ConnectionConfig": {
                     "Host": "192.168.99.100", 
                     "Port": 13307,
                     "User": "root", 
                     "Password": "rootroot"
                 }
             }
         }, 
         {
             "Type": "Dest", 
             "NodeId": "a5e9ad80-8e77-03fd-7fa3-31e007ecdcbe", 
             "Driver": "MySQL", 
             "Config": {
                 "Gtid": "", 
                 "ParallelWorkers": 4, 
                 "ConnectionConfig": {
                     "Host": "192.168.99.100", 
                     "Port": 13309, 
                     "User": "root", 
                     "Password": "rootroot"
                 }
             }
         }
     ]
 }`;

const USER = `udup_${randomBytes(3).toString('hex')}`;
const PASSWORD = `Pw-${randomBytes(9).toString('hex')}`;

interface Endpoint { host: string; port: number; user: string; password: string }
type Json = any;

/**
 * The seed body with only the connection values replaced: Host and Port point
 * at the private servers; User and Password name an account created for the
 * test (the seed's root/rootroot does not exist there, and changing root on
 * the suite's shared server would break other suites).
 */
function seedBody(src: Endpoint, dest: Endpoint, edit: (b: Json) => void = () => undefined): string {
  const body = JSON.parse(SEED_BODY);
  for (const [task, ep] of [[body.Tasks[0], src], [body.Tasks[1], dest]] as const) {
    Object.assign(task.Config.ConnectionConfig, { Host: ep.host, Port: ep.port, User: ep.user, Password: ep.password });
  }
  edit(body);
  return JSON.stringify(body);
}

async function createUser(url: string): Promise<mysql.Connection> {
  const u = new URL(url);
  const conn = await mysql.createConnection({ host: u.hostname, port: Number(u.port), user: 'root', password: '', multipleStatements: true });
  for (const host of ['%', 'localhost', '127.0.0.1']) {
    await conn.query(`CREATE USER IF NOT EXISTS '${USER}'@'${host}' IDENTIFIED BY '${PASSWORD}'`);
    await conn.query(`GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'${host}'`);
  }
  return conn;
}

describe('Udup REST API v1', () => {
  let gw: TestGateway;
  let destServer: PrivateServer;
  let srcAdmin: mysql.Connection;
  let destAdmin: mysql.Connection;
  let src: Endpoint;
  let dest: Endpoint;
  /** Every answer's status line, headers and body, to prove no password leaks. */
  const seen: string[] = [];

  async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers; json: () => Json }> {
    const res = await fetch(`${gw.url}${path}`, { method, body, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers } });
    const text = await res.text();
    seen.push(`${method} ${path} ${res.status} ${JSON.stringify([...res.headers])} ${text}`);
    return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) };
  }
  const jobCount = async () => (await call('GET', '/v1/jobs')).json().length as number;

  beforeAll(async () => {
    const srcUrl = new URL(inject('mariaUrl'));
    [gw, destServer] = await Promise.all([startTestGateway(), startMariadb({ serverId: 2 })]);
    srcAdmin = await createUser(srcUrl.toString());
    destAdmin = await createUser(destServer.url);
    src = { host: '127.0.0.1', port: Number(srcUrl.port), user: USER, password: PASSWORD };
    dest = { host: '127.0.0.1', port: destServer.port, user: USER, password: PASSWORD };
    await srcAdmin.query('DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest; CREATE TABLE sbtest.sbtest1 (id int primary key, k int not null, c varchar(120) not null)');
    await srcAdmin.query("INSERT INTO sbtest.sbtest1 VALUES (1, 10, 'before one'), (2, 20, 'before two'), (3, 30, 'before three')");
  });

  afterAll(async () => {
    await gw?.close();
    // Other suites' jobs share this MariaDB; one reading every schema may hold a metadata lock on sbtest for a
    // while: wait for it at most 20 s (the default lock wait is a day, and the hook would time out).
    await srcAdmin?.query('SET SESSION lock_wait_timeout = 20').catch(() => undefined);
    await srcAdmin?.query('DROP DATABASE IF EXISTS sbtest').catch(() => undefined);
    await srcAdmin?.end().catch(() => undefined);
    await destAdmin?.end().catch(() => undefined);
    await destServer?.stop();
  });

  it('serves its OpenAPI document from the route table', async () => {
    const r = await call('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    const doc = r.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/job/{id}', '/v1/job/{id}/pause', '/v1/job/{id}/resume', '/v1/nodes', '/v1/node/{id}', '/v1/members', '/v1/leader', '/v1/peers']));
    expect(doc.paths['/v1/jobs'].post.requestBody.content['application/json'].example.Name).toBe('exam-7-9');
    expect(doc.paths['/v1/job/{id}'].delete.parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
  });

  it('refuses bad jobs with plain-text 400s and creates nothing', async () => {
    const before = await jobCount();
    const noName = await call('POST', '/v1/jobs', seedBody(src, dest, (b) => { delete b.Name; }));
    expect([noName.status, noName.text]).toEqual([400, "Job Name hasn't been provided"]);
    expect(noName.headers.get('content-type')).toMatch(/^text\/plain/);

    const oracle = await call('POST', '/v1/jobs', seedBody(src, dest, (b) => { b.Name = 'bad-driver'; b.Tasks[0].Driver = 'Oracle'; }));
    expect([oracle.status, oracle.text]).toEqual([400, "unknown driver 'Oracle'"]);

    const deadPort = await freePort();
    const unreachable = await call('POST', '/v1/jobs', seedBody({ ...src, port: deadPort }, dest, (b) => { b.Name = 'bad-host'; }));
    expect(unreachable.status).toBe(400);
    expect(unreachable.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(unreachable.text).toContain(`127.0.0.1:${deadPort}`);

    const wrongPassword = await call('POST', '/v1/jobs', seedBody(src, { ...dest, password: 'not-the-password' }, (b) => { b.Name = 'bad-password'; }));
    expect([400, 403]).toContain(wrongPassword.status);
    expect(wrongPassword.text).toContain(`127.0.0.1:${dest.port}`);
    expect(wrongPassword.text).not.toContain('not-the-password');

    const malformed = await call('POST', '/v1/jobs', '{"Name": "broken", "Tasks": [');
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(malformed.text).toMatch(/malformed JSON/);

    expect(await jobCount()).toBe(before);
    for (const name of ['bad-driver', 'bad-host', 'bad-password']) expect((await call('GET', `/v1/job/${name}`)).status).toBe(404);
  });

  it('answers 404 and 405 like Udup', async () => {
    const missing = await call('GET', '/v1/job/doesnotexist');
    expect([missing.status, missing.text]).toEqual([404, 'job not found']);
    const patch = await call('PATCH', '/v1/jobs', '{}');
    expect([patch.status, patch.text]).toEqual([405, 'Invalid method']);
    expect((await call('POST', '/v1/job/doesnotexist/pause')).status).toBe(404);
    expect((await call('DELETE', '/v1/job/doesnotexist')).status).toBe(404);
    expect((await call('GET', '/v1/job/1/pause')).status).toBe(405);
  });

  let jobIndex = 0;

  it('registers the seed job and replicates sbtest from source to destination', async () => {
    const r = await call('POST', '/v1/jobs', seedBody(src, dest));
    expect(r.status, r.text).toBe(200);
    const body = r.json();
    expect(Object.keys(body)).toEqual(['Index', 'KnownLeader', 'LastContact', 'Success']);
    expect(body).toMatchObject({ KnownLeader: false, LastContact: 0, Success: true });
    expect(body.Index).toBeGreaterThan(0);
    expect(r.headers.get('x-udup-index')).toBe(String(body.Index));
    expect(r.headers.get('x-udup-knownleader')).toBe('false');
    expect(r.headers.get('x-udup-lastcontact')).toBe('0');

    const list = await call('GET', '/v1/jobs');
    const stub = list.json().find((j: Json) => j.Name === 'exam-7-9');
    expect(Object.keys(stub).sort()).toEqual(['CreateIndex', 'ID', 'JobModifyIndex', 'ModifyIndex', 'Name', 'Status', 'StatusDescription', 'Type'].sort());
    expect(stub.Type).toBe('synchronous');
    expect(['pending', 'running']).toContain(stub.Status);
    jobIndex = stub.ID;
    expect(Number(list.headers.get('x-udup-index'))).toBeGreaterThanOrEqual(body.Index);

    const job = (await call('GET', `/v1/job/${jobIndex}`)).json();
    expect(job).toMatchObject({ ID: jobIndex, Name: 'exam-7-9', Type: 'synchronous' });
    const [srcTask, destTask] = job.Tasks;
    expect(srcTask).toMatchObject({ Type: 'Src', NodeId: '1eda45f8-df9b-1541-9009-83952e7b672a', Driver: 'MySQL' });
    expect(srcTask.Config).toMatchObject({ ParallelWorkers: 4, ReplChanBufferSize: 600, MsgBytesLimit: 20480, ReplicateDoDb: [{ TableSchema: 'sbtest', Tables: [] }] });
    expect(srcTask.Config.ConnectionConfig).toEqual({ Host: '127.0.0.1', Port: src.port, User: USER, Password: '*' });
    expect(destTask).toMatchObject({ Type: 'Dest', NodeId: 'a5e9ad80-8e77-03fd-7fa3-31e007ecdcbe' });
    expect(destTask.Config.ConnectionConfig.Password).toBe('*');
    expect((await call('GET', '/v1/job/exam-7-9')).json().ID).toBe(jobIndex);

    // Snapshot, then the stream.
    await srcAdmin.query("INSERT INTO sbtest.sbtest1 VALUES (4, 40, 'after four'), (5, 50, 'after five')");
    await srcAdmin.query("UPDATE sbtest.sbtest1 SET c = 'changed' WHERE id = 1");
    const rows = await waitFor(async () => {
      const [r2] = await destAdmin.query('SELECT id, k, c FROM sbtest.sbtest1 ORDER BY id');
      return r2 as Json[];
    }, (v) => v.length === 5 && v[0].c === 'changed', 60_000, 'rows at the destination');
    expect(rows.map((x) => x.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it('indents ?pretty answers', async () => {
    const plain = await call('GET', '/v1/jobs');
    expect(plain.text).not.toContain('\n');
    const pretty = await call('GET', '/v1/jobs?pretty');
    expect(pretty.text).toContain('\n    {\n        "ID"');
    expect(pretty.text.endsWith('\n')).toBe(true);
    expect(JSON.parse(pretty.text)).toEqual(plain.json());
    expect((await call('GET', '/v1/leader?pretty=true')).status).toBe(200);
  });

  it('blocks a read until the job changes', async () => {
    expect(jobIndex).toBeGreaterThan(0);
    const first = await call('GET', `/v1/job/${jobIndex}`);
    const index = Number(first.headers.get('x-udup-index'));
    expect(index).toBe(first.json().ModifyIndex);

    const quick = await call('GET', `/v1/job/${jobIndex}?index=${index}&wait=300ms`);
    expect(Number(quick.headers.get('x-udup-index'))).toBe(index);

    const started = Date.now();
    const blocked = call('GET', `/v1/job/${jobIndex}?index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 600));
    const pause = await call('PUT', `/v1/job/${jobIndex}/pause`);
    expect(pause.status, pause.text).toBe(200);
    expect(pause.json()).toMatchObject({ Success: true });
    const answer = await blocked;
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(Number(answer.headers.get('x-udup-index'))).toBeGreaterThan(index);
    expect(answer.json().Status).toBe('pause');

    // Pausing again is idempotent, like Udup's status update.
    expect((await call('POST', `/v1/job/${jobIndex}/pause`)).status).toBe(200);
    expect((await call('GET', `/v1/job/${jobIndex}?index=x`)).text).toBe('Invalid index');
    expect((await call('GET', `/v1/job/${jobIndex}?index=1&wait=soon`)).text).toBe('Invalid wait time');

    const resumed = await call('POST', `/v1/job/${jobIndex}/resume`);
    expect(resumed.status, resumed.text).toBe(200);
    expect(resumed.json().Index).toBeGreaterThan(Number(answer.headers.get('x-udup-index')));
    expect((await call('GET', `/v1/job/${jobIndex}`)).json().Status).toBe('running');
  });

  it('updates an existing job by ID and refuses a connection change', async () => {
    const same = await call('PUT', `/v1/job/${jobIndex}`, seedBody(src, dest, (b) => { b.Tasks[0].Config.MsgsLimit = 5000; }));
    expect(same.status, same.text).toBe(200);
    expect((await call('GET', `/v1/job/${jobIndex}`)).json().Tasks[0].Config.MsgsLimit).toBe(5000);
    const moved = await call('POST', '/v1/jobs', seedBody(src, { ...dest, port: dest.port + 1 }, (b) => { b.ID = jobIndex; }));
    expect(moved.status).toBe(400);
    expect(moved.text).toMatch(/Dest ConnectionConfig cannot change/);
  });

  it('lists nodes, members, leader and peers', async () => {
    const nodes = await call('GET', '/v1/nodes');
    expect(nodes.status).toBe(200);
    const stubs = nodes.json();
    expect(stubs.length).toBeGreaterThan(0);
    expect(stubs[0]).toMatchObject({ Datacenter: 'dc1', Status: 'ready' });
    const node = await call('GET', `/v1/node/${stubs[0].ID}`);
    expect(node.json()).toMatchObject({ ID: stubs[0].ID, Name: stubs[0].Name, Status: 'ready' });
    expect((await call('GET', '/v1/node/nope')).text).toBe('node not found');
    const port = new URL(gw.url).port;
    expect((await call('GET', '/v1/leader')).json()).toBe(`127.0.0.1:${port}`);
    expect((await call('GET', '/v1/peers')).json()).toEqual([`127.0.0.1:${port}`]);
    const members = (await call('GET', '/v1/members')).json();
    expect(members.Members.length).toBeGreaterThan(0);
    expect(members.Members[0]).toMatchObject({ Status: 'alive', Port: Number(port) });
  });

  it('deregisters the job', async () => {
    const del = await call('DELETE', `/v1/job/${jobIndex}`);
    expect(del.status, del.text).toBe(200);
    expect(del.json()).toMatchObject({ Success: true });
    expect((await call('GET', `/v1/job/${jobIndex}`)).status).toBe(404);
  });

  it('takes dtle\'s per-table Where and ReplicateIgnoreDb: filtered rows, ignored tables, a row updated out of the filter deleted', async () => {
    await srcAdmin.query(`DROP DATABASE IF EXISTS dtle_src; CREATE DATABASE dtle_src;
      CREATE TABLE dtle_src.orders (id int primary key, amount int not null, note varchar(20));
      CREATE TABLE dtle_src.items (id int primary key, name varchar(20));
      CREATE TABLE dtle_src.audit (id int primary key, what varchar(20));
      INSERT INTO dtle_src.orders VALUES (1, 5, 'small'), (2, 50, 'big'), (3, 500, 'huge'), (4, 7, 'small');
      INSERT INTO dtle_src.items VALUES (1, 'a'), (2, 'b');
      INSERT INTO dtle_src.audit VALUES (1, 'x')`);
    const body = seedBody(src, dest, (b) => {
      b.Name = 'dtle-where';
      b.Tasks[0].Config.ReplicateDoDb = [{ TableSchema: 'dtle_src', Tables: [{ TableName: 'orders', Where: 'amount > 10' }] }, { TableSchema: 'dtle_src' }];
      b.Tasks[0].Config.ReplicateIgnoreDb = [{ TableSchema: 'dtle_src', Tables: [{ TableName: 'audit' }] }];
    });
    const r = await call('POST', '/v1/jobs', body);
    expect(r.status, r.text).toBe(200);
    const job = (await call('GET', '/v1/job/dtle-where')).json();
    expect(job.Tasks[0].Config.ReplicateDoDb).toEqual([{ TableSchema: 'dtle_src', Tables: [{ TableName: 'orders', Where: 'amount > 10' }] }, { TableSchema: 'dtle_src', Tables: [] }]);
    expect(job.Tasks[0].Config.ReplicateIgnoreDb).toEqual([{ TableSchema: 'dtle_src', Tables: [{ TableName: 'audit' }] }]);
    const orders = async () => ((await destAdmin.query('SELECT id, amount FROM dtle_src.orders ORDER BY id').catch(() => [[]]))[0] as Json[]).map((x) => `${x.id}:${x.amount}`);
    expect(await waitFor(orders, (v) => v.length === 2, 60_000, 'filtered snapshot')).toEqual(['2:50', '3:500']);
    await srcAdmin.query('UPDATE dtle_src.orders SET amount = 1 WHERE id = 2; UPDATE dtle_src.orders SET amount = 70 WHERE id = 4; INSERT INTO dtle_src.orders VALUES (5, 2, null), (6, 60, null); INSERT INTO dtle_src.audit VALUES (2, "y")');
    expect(await waitFor(orders, (v) => v.join() === '3:500,4:70,6:60', 60_000, 'filtered stream')).toEqual(['3:500', '4:70', '6:60']);
    const [items] = await destAdmin.query('SELECT count(*) AS n FROM dtle_src.items');
    expect((items as Json[])[0].n).toBe(2);
    const [audit] = await destAdmin.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'dtle_src' AND table_name = 'audit'");
    expect((audit as Json[])[0].n).toBe(0);
    // A Where that cannot be judged row by row is refused, and nothing is registered.
    const bad = await call('POST', '/v1/jobs', seedBody(src, dest, (b) => { b.Name = 'dtle-bad'; b.Tasks[0].Config.ReplicateDoDb = [{ TableSchema: 'dtle_src', Tables: [{ TableName: 'orders', Where: "note LIKE 'b%'" }] }]; }));
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/LIKE/);
    expect((await call('GET', '/v1/job/dtle-bad')).status).toBe(404);
    expect((await call('DELETE', '/v1/job/dtle-where')).status).toBe(200);
    await srcAdmin.query('DROP DATABASE IF EXISTS dtle_src');
  });

  it('never shows a password in any answer', () => {
    expect(seen.length).toBeGreaterThan(20);
    for (const s of seen) expect(s).not.toContain(PASSWORD);
  });
});
