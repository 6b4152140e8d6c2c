/**
 * Bad createJob input through GraphQL: a clear error with a code, and
 * nothing half-created (no job, no inline connection left behind).
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, type DbHandle } from '../../support/databases.ts';
import { endpoint } from '../../support/replication.ts';
import { freePort } from '../../../src/devtools/private-servers.ts';

const CREATE = `mutation($i: JobInput!) { createJob(input: $i) { id } }`;

describe('createJob with bad input', () => {
  let gw: TestGateway; let maria: DbHandle; let pgdb: DbHandle;
  const user = uniq('tribu_pw');
  const password = 'Right-Pass-9f8e7d';
  beforeAll(async () => {
    gw = await startTestGateway();
    maria = await mariaDatabase(inject('mariaUrl'), uniq('err_src'));
    pgdb = await pgDatabase(inject('pgUrl'), uniq('err_dst'));
    await maria.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'; GRANT ALL ON *.* TO '${user}'@'%'`);
  });
  afterAll(async () => {
    await maria?.query(`DROP USER IF EXISTS '${user}'@'%'`).catch(() => undefined);
    await gw?.close(); await maria?.close(); await pgdb?.close();
  });

  const counts = async () => (await gql(gw.url, '{ jobs { totalCount } connections { totalCount } }')).body.data;

  it('rejects each case with a coded error and leaves jobs and connections unchanged', async () => {
    // One good connection exists beforehand, so "unchanged" is not trivially zero.
    const ok = await gql(gw.url, `mutation($i: ConnectionInput!) { createConnection(input: $i) { id } }`, { i: { ...endpoint(pgdb), name: uniq('existing') } });
    expect(ok.body.errors).toBeUndefined();
    const before = await counts();
    expect(before.connections.totalCount).toBeGreaterThanOrEqual(1);
    const good = { name: uniq('bad'), type: 'SYNCHRONOUS', source: { ...endpoint(maria), user, password }, destination: endpoint(pgdb), tables: [{ schema: maria.database }] };

    const cases: { label: string; input: Record<string, unknown>; code: string[]; message: RegExp }[] = [
      { label: 'unknown kind', input: { ...good, source: { ...good.source, kind: 'ORACLE' } }, code: ['BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED'], message: /ORACLE/ },
      { label: 'unknown job type', input: { ...good, type: 'SOMETIMES' }, code: ['BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED'], message: /SOMETIMES/ },
      { label: 'unreachable source host', input: { ...good, source: { ...good.source, port: await freePort() } }, code: ['CONNECTION_FAILED'], message: /cannot connect to mysql at 127\.0\.0\.1:\d+/ },
      { label: 'wrong password', input: { ...good, source: { ...good.source, password: 'Wrong-Pass-123' } }, code: ['CONNECTION_FAILED'], message: /cannot connect to mysql.*(denied|password)/i },
      // The source connection is created first; the destination's failure must remove it again.
      { label: 'unreachable destination after a good source', input: { ...good, destination: { ...good.destination, port: await freePort() } }, code: ['CONNECTION_FAILED'], message: /cannot connect to postgres/ },
      { label: 'empty name', input: { ...good, name: '' }, code: ['BAD_USER_INPUT'], message: /name/ },
      { label: 'invalid name', input: { ...good, name: 'has spaces' }, code: ['BAD_USER_INPUT'], message: /name/ },
      { label: 'missing destination', input: { ...good, destination: undefined }, code: ['BAD_USER_INPUT'], message: /destination/ },
    ];
    for (const c of cases) {
      const r = await gql(gw.url, CREATE, { i: c.input });
      const err = r.body.errors?.[0];
      expect(err, c.label).toBeDefined();
      expect(r.body.data?.createJob ?? null, c.label).toBeNull();
      expect(c.code, `${c.label}: ${JSON.stringify(err)}`).toContain(err!.extensions?.code);
      expect(err!.message, c.label).toMatch(c.message);
      expect(JSON.stringify(r.body), c.label).not.toContain('Wrong-Pass-123');
      expect(JSON.stringify(r.body), c.label).not.toContain(password);
      expect(await counts(), c.label).toEqual(before);
    }
    // Missing name entirely is a schema violation.
    const { name: _drop, ...noName } = good;
    const r = await gql(gw.url, CREATE, { i: noName });
    expect(['BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED']).toContain(r.body.errors?.[0]?.extensions?.code);
    expect(r.body.errors?.[0]?.message).toMatch(/name/);
    expect(await counts()).toEqual(before);

    // The same input with the right password works (so the cases above failed for their reason).
    const created = await gql(gw.url, `mutation($i: JobInput!) { createJob(input: $i) { id status } }`, { i: { ...good, paused: true } });
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data.createJob.status).toBe('PENDING');
    expect(await counts()).toEqual({ jobs: { totalCount: before.jobs.totalCount + 1 }, connections: { totalCount: before.connections.totalCount + 2 } });
    // A duplicate name conflicts and, again, leaves no connection behind.
    const dup = await gql(gw.url, CREATE, { i: good });
    expect(dup.body.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(await counts()).toEqual({ jobs: { totalCount: before.jobs.totalCount + 1 }, connections: { totalCount: before.connections.totalCount + 2 } });
  });
});
