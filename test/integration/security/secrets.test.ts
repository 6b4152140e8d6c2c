/**
 * Secrets never leave: a full run with distinctive passwords (connections
 * through GraphQL, Udup and the connection service, a running job, a cached
 * query, changeserver reads, failures with wrong passwords) while every
 * HTTP response body and header, every log line (debug level, captured from
 * the App's logger), /metrics and every job log are collected; none may hold
 * a password, a connection string with its password, or the API token.
 */
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { App } from '../../../src/app.ts';
import { loadConfig } from '../../../src/config/config.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { Role } from '../../../src/auth/roles.ts';
import { metadataUrl } from '../../support/gateway.ts';
import { pgDatabase, waitFor, type DbHandle } from '../../support/databases.ts';
import { startReceiver } from '../../support/brokers.ts';
import { freePort } from '../../../src/devtools/private-servers.ts';

const pw = (label: string) => `Pw${label}${randomBytes(6).toString('hex')}`;
const PW = {
  gqlConnection: pw('GqlConn'), gqlTest: pw('GqlTest'), jobSource: pw('JobSrc'), jobDest: pw('JobDst'), udupWrong: pw('UdupWrong'),
  udupPg: pw('UdupPg'), envConn: pw('EnvConn'), envWrong: pw('EnvWrong'), gqlWrong: pw('GqlWrong'),
  sinkHook: pw('SinkHook'), sinkNats: pw('SinkNats'), sinkNatsToken: pw('SinkNatsTok'), sinkRabbitWrong: pw('SinkRabbitWrong'),
};

describe('secrets stay out of responses, logs, metrics and job logs', () => {
  let app: App;
  let url = '';
  let token = '';
  const logs: string[] = [];
  const seen: { what: string; text: string }[] = [];
  let src: DbHandle;
  let dst: DbHandle;
  const pgPort = () => Number(new URL(inject('pgUrl')).port);
  const mariaPort = () => Number(new URL(inject('mariaUrl')).port);

  async function call(path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
    const res = await fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> ?? {}) } });
    const text = await res.text();
    seen.push({ what: `${init.method ?? 'GET'} ${path} body`, text });
    seen.push({ what: `${init.method ?? 'GET'} ${path} headers`, text: JSON.stringify([...res.headers.entries()]) });
    return { status: res.status, text };
  }
  async function gql(query: string, variables?: Record<string, unknown>): Promise<any> {
    const r = await call('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    return JSON.parse(r.text);
  }

  beforeAll(async () => {
    const id = randomBytes(4).toString('hex');
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', databaseUrl: metadataUrl(`tributary_secrets_${id}`), redisUrl: inject('redisUrl'), queuePrefix: `s${id}`,
      secretKey: 'test-secret-key-0123456789', logLevel: 'debug', workerConcurrency: 8, rateLimitPerSecond: 0,
    } as never);
    const stream = new Writable({ write(chunk, _enc, done) { logs.push(String(chunk)); done(); } });
    app = new App({ config, serve: true, worker: true, logger: createLogger('debug', stream) });
    await app.start();
    url = `http://127.0.0.1:${app.address()!.port}`;
    token = (await app.services.tokens.create('secrets-admin', Role.Admin)).token;
    app.services.auth.invalidate();
    src = await pgDatabase(inject('pgUrl'));
    dst = await pgDatabase(inject('pgUrl'));
    await src.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await src.query("INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 50) g");
  });
  afterAll(async () => {
    await app?.close();
    await src?.close();
    await dst?.close();
  });

  it('runs a full flow and finds no password anywhere', async () => {
    const pgConn = (password: string, database: string) => ({ kind: 'POSTGRES', host: '127.0.0.1', port: pgPort(), user: 'postgres', password, database });
    // GraphQL: a stored connection, a test with an inline one, a running job (PostgreSQL trusts local users: any password connects).
    expect((await gql('mutation($i: ConnectionInput!) { createConnection(input: $i) { id name host } }', { i: { ...pgConn(PW.gqlConnection, src.database), name: 'secrets-conn' } })).errors).toBeUndefined();
    await gql('mutation($i: ConnectionInput) { testConnection(input: $i) { ok error missing details } }', { i: pgConn(PW.gqlTest, src.database) });
    const job = await gql('mutation($i: JobInput!) { createJob(input: $i) { id name status } }', { i: { name: 'secrets_job', type: 'SYNCHRONOUS', source: pgConn(PW.jobSource, src.database), destination: pgConn(PW.jobDest, dst.database) } });
    expect(job.errors, JSON.stringify(job.errors)).toBeUndefined();
    await waitFor(() => gql('{ job(id: "secrets_job") { status progress { phase } } }'), (r: any) => r.data?.job?.status === 'RUNNING' && r.data.job.progress?.phase !== 'SNAPSHOT', 90_000, 'job running');
    await src.query("INSERT INTO items VALUES (1001, 'live')");
    await waitFor(() => dst.query('SELECT count(*)::int AS n FROM items'), (rows: any) => rows[0]?.n === 51, 60_000, 'row applied');
    // GraphQL failure with a wrong password (MariaDB checks it).
    await gql('mutation($i: JobInput!) { createJob(input: $i) { id } }', { i: { name: 'secrets_bad', type: 'SUBSCRIBE', source: { kind: 'MYSQL', host: '127.0.0.1', port: mariaPort(), user: 'root', password: PW.gqlWrong } } });

    // Udup: a failing job (wrong MariaDB password), a job on PostgreSQL, reads.
    const cc = (password: string, port: number) => ({ Host: '127.0.0.1', Port: port, User: 'root', Password: password });
    await call('/v1/jobs', { method: 'POST', body: JSON.stringify({ Name: 'secrets_udup_bad', Type: 'subscribe', Tasks: [{ Type: 'Src', Driver: 'MySQL', Config: { ConnectionConfig: cc(PW.udupWrong, mariaPort()) } }] }) });
    await call('/v1/jobs', { method: 'POST', body: JSON.stringify({ Name: 'secrets_udup_pg', Type: 'subscribe', Tasks: [{ Type: 'Src', Driver: 'MySQL', Config: { ConnectionConfig: cc(PW.udupPg, 1) } }] }) });
    await call('/v1/jobs');
    await call('/v1/job/secrets_job?pretty');

    // Connection service: an environment on PostgreSQL with a cached query, a failing one, status reads.
    const cs = `postgres://postgres:${PW.envConn}@127.0.0.1:${pgPort()}/${src.database}`;
    const env = await call('/createDatabaseConnection', { method: 'POST', body: new URLSearchParams({ connectionString: cs, environmentId: 'secrets-env' }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(env.status, env.text).toBeLessThan(300);
    const cq = await call('/createCachedQuery', { method: 'POST', body: JSON.stringify({ connectionString: cs, environmentId: 'secrets-env', sqlQuery: 'SELECT count(*) AS n FROM items' }), headers: { 'content-type': 'application/json' } });
    expect(cq.status, cq.text).toBe(201);
    const cqId = JSON.parse(cq.text).id;
    await waitFor(() => call(`/cachedQueries/${cqId}`), (r) => r.status === 200 && JSON.parse(r.text).version > 0, 60_000, 'cached query result');
    await call('/createDatabaseConnection', { method: 'POST', body: JSON.stringify({ connectionString: `mysql://root:${PW.envWrong}@127.0.0.1:${mariaPort()}/mysql`, environmentId: 'secrets-env-bad' }), headers: { 'content-type': 'application/json' } });
    await call('/checkJobStatus', { method: 'POST', body: JSON.stringify({ connectionString: cs, environmentId: 'secrets-env' }), headers: { 'content-type': 'application/json' } });
    await call('/environments/secrets-env');

    // changeserver, Cello, FATE-Flow reads.
    await src.query("INSERT INTO items VALUES (1002, 'again')");
    await call('/feeds/secrets-env/changes?scope=&limit=10');
    await call('/feeds/secrets_job/changes?scope=&limit=10');
    await call('/v2/clusters');
    await call('/v1/job/query', { method: 'POST', body: '{}' });
    await call('/v1/table/table_info', { method: 'POST', body: JSON.stringify({ namespace: 'secrets-conn', table_name: 'items' }) });

    // Sinks: a signed webhook (delivering), NATS with a password and a token to a port where nothing listens
    // (retrying), RabbitMQ with a wrong password (FAILED); everything GraphQL shows of them.
    const receiver = await startReceiver();
    try {
      const mk = (name: string, kind: string, config: Record<string, unknown>) => gql('mutation($i: CreateSinkInput!) { createSink(input: $i) { id config secretsSet } }', { i: { name, feed: 'secrets_job', kind, config, delivery: { maxAttempts: 2, backoffMs: 10, maxBackoffMs: 20 } } });
      expect((await mk('secrets_hook', 'WEBHOOK', { url: receiver.url, secret: PW.sinkHook })).errors).toBeUndefined();
      expect((await mk('secrets_nats', 'NATS', { servers: `nats://127.0.0.1:${await freePort()}`, user: 'u', password: PW.sinkNats, token: PW.sinkNatsToken })).errors).toBeUndefined();
      expect((await mk('secrets_rabbit', 'RABBITMQ', { host: '127.0.0.1', username: 'guest', password: PW.sinkRabbitWrong })).errors).toBeUndefined();
      await waitFor(() => gql('{ sinks { name status error delivered } }'), (r: any) => r.data.sinks.find((x: any) => x.name === 'secrets_rabbit')?.status === 'FAILED'
        && r.data.sinks.find((x: any) => x.name === 'secrets_hook')?.delivered > 0 && /retrying/.test(r.data.sinks.find((x: any) => x.name === 'secrets_nats')?.error ?? ''), 60_000, 'sinks delivering, retrying, failed');
      await gql('{ sinks { id name feed kind config secretsSet status error position delivered failed deadLetterCount } }');
      expect(receiver.requests.length).toBeGreaterThan(0);
    } finally { await receiver.close(); }

    // Everything GraphQL shows of connections and jobs, with every job's log.
    const all = await gql('{ connections(first: 100) { edges { node { id name kind host port user database } } } jobs(first: 100) { edges { node { id name status error statusReason spec source { host user } destination { host user } tasks { name status error } logs(last: 10000) { level message } } } } }');
    expect(all.errors, JSON.stringify(all.errors)).toBeUndefined();
    const jobLogs = all.data.jobs.edges.flatMap((e: any) => e.node.logs.map((l: any) => l.message));
    expect(jobLogs.length).toBeGreaterThan(0);
    seen.push({ what: 'job logs', text: jobLogs.join('\n') });
    seen.push({ what: '/metrics', text: (await call('/metrics')).text });

    const secrets = [...Object.values(PW), token, cs];
    const leaks: string[] = [];
    for (const s of secrets) {
      for (const { what, text } of seen) if (text.includes(s)) leaks.push(`${s.slice(0, 12)}… in ${what}: ${text.slice(Math.max(0, text.indexOf(s) - 120), text.indexOf(s) + 40)}`);
      for (const line of logs) if (line.includes(s)) leaks.push(`${s.slice(0, 12)}… in a log line: ${line.slice(0, 300)}`);
    }
    expect(leaks).toEqual([]);
    // The flow ran for real: failures were answered, logs were written.
    expect(logs.length).toBeGreaterThan(5);
    expect(seen.some((x) => /access denied|authentication|password/i.test(x.text))).toBe(true);
  });
});
