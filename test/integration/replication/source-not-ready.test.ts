/**
 * createJob (GraphQL) and Udup POST /v1/jobs against sources that capture
 * cannot read: refused with an error naming every missing setting and its fix,
 * instead of answering RUNNING and failing a moment later unseen. A job created
 * paused is accepted; when it is started and fails, the server log says so at
 * error level with the job's name, id and reason.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { endpoint } from '../../support/replication.ts';
import { startMariadb, startPostgres, type PrivateServer } from '../../../src/devtools/private-servers.ts';
import { createLogger } from '../../../src/observability/logger.ts';

const CREATE = `mutation($i: JobInput!) { createJob(input: $i) { id name status } }`;

describe('createJob refuses a source capture cannot read', () => {
  let gw: TestGateway; let maria: PrivateServer; let pgSrc: PrivateServer; let dest: DbHandle;
  const logLines: string[] = [];
  const mariaSource = () => ({ kind: 'MYSQL', host: '127.0.0.1', port: maria.port, user: 'root', password: '' });
  const pgSource = () => ({ kind: 'POSTGRES', host: '127.0.0.1', port: pgSrc.port, user: 'norepl', password: '', database: 'postgres' });
  const jobCount = async () => (await gql(gw.url, '{ jobs { totalCount } }')).body.data.jobs.totalCount as number;

  beforeAll(async () => {
    [maria, pgSrc] = await Promise.all([
      // No binlog at all, and the wrong format and row image for when it is turned on.
      startMariadb({ args: ['--skip-log-bin', '--binlog-format=STATEMENT', '--binlog-row-image=MINIMAL'] }),
      startPostgres({ args: ['-c', 'wal_level=replica'] }),
    ]);
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ connectionString: pgSrc.url });
    await admin.connect();
    await admin.query('CREATE ROLE norepl LOGIN NOREPLICATION');
    await admin.end();
    const stream = new PassThrough();
    stream.on('data', (b: Buffer) => logLines.push(...b.toString().split('\n').filter(Boolean)));
    gw = await startTestGateway({}, { logger: createLogger('info', stream) });
    dest = await pgDatabase(inject('pgUrl'), uniq('notready_dst'));
  });
  afterAll(async () => {
    await gw?.close(); await dest?.close();
    await Promise.all([maria?.stop(), pgSrc?.stop()]);
  });

  it('MariaDB without binlog: GraphQL error SOURCE_NOT_READY naming log_bin, binlog_format and binlog_row_image', async () => {
    const r = await gql(gw.url, CREATE, { i: { name: uniq('nobinlog'), source: mariaSource(), destination: endpoint(dest), tables: [{ schema: 'shop' }] } });
    const err = r.body.errors?.[0];
    expect(err?.extensions?.code, JSON.stringify(r.body)).toBe('SOURCE_NOT_READY');
    expect(err!.message).toMatch(/log_bin \(start the server with log_bin/);
    expect(err!.message).toMatch(/binlog_format=ROW \(SET GLOBAL binlog_format = ROW/);
    expect(err!.message).toMatch(/binlog_row_image=FULL \(SET GLOBAL binlog_row_image = FULL/);
    expect(err!.message).toMatch(/paused: true/);
    expect(r.body.data?.createJob ?? null).toBeNull();
    expect(await jobCount()).toBe(0);
  });

  it('PostgreSQL with wal_level=replica and a role without REPLICATION: both named', async () => {
    const r = await gql(gw.url, CREATE, { i: { name: uniq('replica'), type: 'SUBSCRIBE', source: pgSource(), tables: [{ schema: 'public' }] } });
    const err = r.body.errors?.[0];
    expect(err?.extensions?.code, JSON.stringify(r.body)).toBe('SOURCE_NOT_READY');
    expect(err!.message).toMatch(/wal_level=logical \(set wal_level = logical in postgresql\.conf and restart/);
    expect(err!.message).toMatch(/REPLICATION attribute \(ALTER ROLE norepl REPLICATION/);
    expect(await jobCount()).toBe(0);
  });

  it('connection service POST /createDatabaseConnection: 422 SOURCE_NOT_READY naming wal_level and REPLICATION', async () => {
    const cs = `postgres://norepl@127.0.0.1:${pgSrc.port}/postgres`;
    const res = await fetch(`${gw.url}/createDatabaseConnection`, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: JSON.stringify({ connectionString: cs, environmentId: uniq('env') }) });
    const body = await res.json() as { code: string; message: string };
    expect(res.status, JSON.stringify(body)).toBe(422);
    expect(body.code).toBe('SOURCE_NOT_READY');
    expect(body.message).toMatch(/wal_level=logical.*REPLICATION attribute/);
    expect(await jobCount()).toBe(0);
  });

  it('Udup POST /v1/jobs: 400 naming the settings; with "Stop": true the job is registered, not started', async () => {
    const body = (stop: boolean) => JSON.stringify({
      Name: uniq('udup_nobinlog'), Type: 'synchronous', ...(stop ? { Stop: true } : {}),
      Tasks: ['Src', 'Dest'].map((Type) => ({ Type, Driver: 'MySQL', Config: { ReplicateDoDb: [{ TableSchema: 'shop' }], ConnectionConfig: { Host: '127.0.0.1', Port: maria.port, User: 'root', Password: '' } } })),
    });
    const post = (b: string) => fetch(`${gw.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
    const refused = await post(body(false));
    const text = await refused.text();
    expect(refused.status, text).toBe(400);
    expect(text).toMatch(/log_bin.*binlog_format=ROW.*binlog_row_image=FULL/);
    expect(text).not.toMatch(/at .*\.ts:\d+/);
    expect(await jobCount()).toBe(0);

    const stopped = await post(body(true));
    expect(stopped.status, await stopped.clone().text()).toBe(200);
    const jobs = (await gql(gw.url, '{ jobs { edges { node { name status } } } }')).body.data.jobs.edges;
    expect(jobs.map((e: { node: { status: string } }) => e.node.status)).toEqual(['PENDING']);
  });

  it('created paused it is accepted; started, it fails and the server log says which job and why', async () => {
    const name = uniq('paused_nobinlog');
    const r = await gql(gw.url, CREATE, { i: { name, paused: true, source: mariaSource(), destination: endpoint(dest), tables: [{ schema: 'shop' }] } });
    expect(r.body.errors, JSON.stringify(r.body)).toBeUndefined();
    expect(r.body.data.createJob.status).toBe('PENDING');
    const id = r.body.data.createJob.id as string;
    const resumed = await gql(gw.url, `mutation($id: ID!) { resumeJob(id: $id) { status } }`, { id });
    expect(resumed.body.errors, JSON.stringify(resumed.body)).toBeUndefined();
    await waitFor(async () => (await gql(gw.url, `query($id: ID!) { job(id: $id) { status } }`, { id })).body.data.job.status, (s) => s === 'FAILED', 30_000, 'job FAILED');
    const failed = await waitFor(async () => logLines.map((l) => JSON.parse(l)).filter((l) => l.level === 'error' && l.jobId === id), (l) => l.length > 0, 10_000, 'error log line');
    expect(failed[0]).toMatchObject({ job: name, jobId: id });
    expect(failed[0].reason).toMatch(/log_bin/);
    expect(failed[0].msg).toContain(name);
  });
});
