/** Udup's wire format: job bodies in, models.Job / stubs / nodes out, blocking-query parameters, errors as plain text. */
import { describe, expect, it } from 'vitest';
import { RestError } from '../../../../src/rest-compat/rest-route.ts';
import {
  UdupHeader, blockingParams, decodeUdupJob, graphqlErrorResponse, isPretty, parseGoDuration, readResponse, redact, serialize,
  udupJob, udupJobStub, udupMembers, updateFromUdupJob, writeResponse, MAX_WAIT_MS, type GqlJob, type GqlNode,
} from '../../../../src/rest-compat/udup/udup.mapping.ts';
import { restRequest } from '../support.ts';

const task = (Type: string, cc: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ Type, Driver: 'MySQL', Config: { ConnectionConfig: cc, ...extra } });
const SRC = { Host: '127.0.0.1', Port: '13307', User: 'root', Password: 'rootpw' };
const DEST = { Host: '127.0.0.1', Port: 13308, User: 'root', Password: 'destpw' };

function badRequest(f: () => unknown): string {
  try { f(); } catch (err) { expect(err).toBeInstanceOf(RestError); expect((err as RestError).status).toBe(400); return (err as Error).message; }
  return 'no error';
}

describe('decodeUdupJob', () => {
  it('translates a Udup job into createJob input (weak ints, tables, limits, Gtid, NodeId hints, Stop)', () => {
    const out = decodeUdupJob({
      Name: 'exam', ID: 7, Stop: true,
      Tasks: [
        { ...task('Src', SRC, { Gtid: 'abc:1-5', ReplChanBufferSize: 60, ParallelWorkers: 2, ReplicateDoDb: [{ TableSchema: 'sbtest', Tables: [{ TableName: 'sbtest1' }] }, { TableSchema: 'all' }] }), NodeId: 'node-a' },
        task('Dest', DEST, { ParallelWorkers: '4' }),
      ],
    });
    expect(out).toEqual({
      id: '7',
      input: {
        name: 'exam', type: 'SYNCHRONOUS',
        source: { kind: 'MYSQL', host: '127.0.0.1', port: 13307, user: 'root', password: 'rootpw' },
        destination: { kind: 'MYSQL', host: '127.0.0.1', port: 13308, user: 'root', password: 'destpw' },
        tables: [{ schema: 'sbtest', tables: ['sbtest1'] }, { schema: 'all' }],
        parallelWorkers: 4, replChanBufferSize: 60, startPosition: 'abc:1-5', nodeHints: { Src: 'node-a' }, paused: true,
      },
    });
  });

  it('lets a subscribe job go without Dest, and leaves zero limits to the defaults', () => {
    const out = decodeUdupJob({ Name: 's', Type: 'subscribe', Tasks: [task('Src', SRC, { MsgsLimit: 0 })] });
    expect(out.input).toEqual({ name: 's', type: 'SUBSCRIBE', source: { kind: 'MYSQL', host: '127.0.0.1', port: 13307, user: 'root', password: 'rootpw' } });
  });

  it('refuses what Udup refused, in its words', () => {
    expect(badRequest(() => decodeUdupJob(undefined))).toMatch(/Request body is empty/);
    expect(badRequest(() => decodeUdupJob({ Tasks: [] }))).toBe("Job Name hasn't been provided");
    expect(badRequest(() => decodeUdupJob({ Name: 'x', Tasks: [] }))).toBe('Missing job tasks');
    expect(badRequest(() => decodeUdupJob({ Name: 'x', Type: 'batch', Tasks: [task('Src', SRC)] }))).toMatch(/Invalid job type 'batch'/);
    expect(badRequest(() => decodeUdupJob({ Name: 'x', Tasks: [task('Src', SRC)] }))).toBe('Job has no Dest task');
    expect(badRequest(() => decodeUdupJob({ Name: 'x', Tasks: [task('Src', SRC), task('Src', SRC)] }))).toBe("Job task 2 redefines 'Src' from task 1");
    expect(badRequest(() => decodeUdupJob({ Name: 'x', Tasks: [task('Src', { ...SRC, Port: 'abc' }), task('Dest', DEST)] }))).toMatch(/Port must be an integer between 1 and 65535/);
    expect(badRequest(() => decodeUdupJob({ Name: 'x', Tasks: [{ ...task('Src', SRC), Driver: 'oracle' }, task('Dest', DEST)] }))).toBe("unknown driver 'oracle'");
  });
});

describe('dtle table controls', () => {
  it('maps a table\'s Where to a row filter of its own selection and ReplicateIgnoreDb to ignoreTables', () => {
    const out = decodeUdupJob({
      Name: 'dtle', Tasks: [
        task('Src', SRC, {
          ReplicateDoDb: [{ TableSchema: 'shop', Tables: [{ TableName: 'orders', Where: 'amount > 10' }, { TableName: 'items' }, { TableName: 'users' }] }, { TableSchema: 'crm' }],
          ReplicateIgnoreDb: [{ TableSchema: 'crm', Tables: [{ TableName: 'audit' }] }, { TableSchema: 'tmp' }],
        }),
        task('Dest', DEST),
      ],
    });
    expect(out.input.tables).toEqual([{ schema: 'shop', tables: ['items', 'users'] }, { schema: 'shop', tables: ['orders'], where: 'amount > 10' }, { schema: 'crm' }]);
    expect(out.input.ignoreTables).toEqual([{ schema: 'crm', tables: ['audit'] }, { schema: 'tmp' }]);
    expect(badRequest(() => decodeUdupJob({ Name: 'x', Tasks: [task('Src', SRC, { ReplicateIgnoreDb: [{ TableSchema: 'a', Tables: [{ TableName: 't', Where: 'id > 1' }] }] }), task('Dest', DEST)] })))
      .toMatch(/row filter belongs in ReplicateDoDb/);
  });

  it('writes the filters back as Where and the ignored tables as ReplicateIgnoreDb', () => {
    const job: GqlJob = {
      id: 'u2', index: 8, name: 'dtle', type: 'SYNCHRONOUS', status: 'RUNNING', createIndex: '1', modifyIndex: '1',
      spec: { tables: { schemas: [{ schema: 'shop', tables: ['items'] }, { schema: 'shop', tables: ['orders'], where: 'amount > 10' }], ignore: [{ schema: 'tmp' }] } },
      tasks: [], source: { kind: 'mysql', host: 'h1', port: 1, user: 'u' }, destination: { kind: 'mysql', host: 'h2', port: 2, user: 'v' },
    };
    const src = (udupJob(job) as { Tasks: Record<string, any>[] }).Tasks[0]!;
    expect(src.Config.ReplicateDoDb).toEqual([{ TableSchema: 'shop', Tables: [{ TableName: 'items' }, { TableName: 'orders', Where: 'amount > 10' }] }]);
    expect(src.Config.ReplicateIgnoreDb).toEqual([{ TableSchema: 'tmp', Tables: [] }]);
  });
});

describe('updateFromUdupJob', () => {
  const existing = { type: 'SYNCHRONOUS', source: { kind: 'MYSQL', host: '127.0.0.1', port: 13307, user: 'root' }, destination: { kind: 'MYSQL', host: '127.0.0.1', port: 13308, user: 'root' } };
  it('keeps only what an existing job may change', () => {
    const req = decodeUdupJob({ Name: 'x', Tasks: [task('Src', SRC, { MsgsLimit: 5 }), task('Dest', DEST)] });
    expect(updateFromUdupJob(req, existing)).toEqual({ msgsLimit: 5 });
  });
  it('refuses a type or connection change', () => {
    expect(badRequest(() => updateFromUdupJob(decodeUdupJob({ Name: 'x', Type: 'migration', Tasks: [task('Src', SRC), task('Dest', DEST)] }), existing))).toMatch(/Job Type cannot change from 'synchronous' to 'migration'/);
    expect(badRequest(() => updateFromUdupJob(decodeUdupJob({ Name: 'x', Tasks: [task('Src', { ...SRC, Host: 'other' }), task('Dest', DEST)] }), existing))).toMatch(/Task Src ConnectionConfig cannot change/);
  });
});

describe('job views', () => {
  const job: GqlJob = {
    id: 'u1', index: 7, name: 'exam', type: 'SYNCHRONOUS', status: 'PAUSED', statusReason: 'paused by request', createIndex: '7', modifyIndex: '9',
    spec: { startPosition: '', parallelWorkers: 2, tables: { schemas: [{ schema: 'sbtest', tables: ['t1'] }] }, nodeHints: { Src: 'node-a' } } as GqlJob['spec'],
    tasks: [{ kind: 'apply', name: 'Dest', status: 'running', nodeId: 'w-1' }],
    source: { kind: 'mysql', host: 'h1', port: 1, user: 'u' }, destination: { kind: 'postgres', host: 'h2', port: 2, user: 'v' },
  };
  it('writes models.Job with Udup\'s status word and masked passwords', () => {
    const v = udupJob(job) as { Status: string; Tasks: Record<string, any>[]; ID: number; JobModifyIndex: number; Type: string };
    expect(v).toMatchObject({ ID: 7, Name: 'exam', Type: 'synchronous', Status: 'pause', StatusDescription: 'paused by request', CreateIndex: 7, ModifyIndex: 9, JobModifyIndex: 9 });
    expect(v.Tasks.map((t) => [t.Type, t.NodeId, t.NodeName, t.Driver, t.Config.ConnectionConfig.Password])).toEqual([['Src', 'node-a', '', 'MySQL', '*'], ['Dest', 'w-1', 'w-1', 'PostgreSQL', '*']]);
    expect(v.Tasks[0]!.Config.ReplicateDoDb).toEqual([{ TableSchema: 'sbtest', Tables: [{ TableName: 't1' }] }]);
  });
  it('writes the list stub; a failed or canceled job is dead', () => {
    expect(udupJobStub({ ...job, status: 'FAILED', statusReason: null, error: 'boom' })).toEqual({ ID: 7, Name: 'exam', Type: 'synchronous', Status: 'dead', StatusDescription: 'boom', CreateIndex: 7, ModifyIndex: 9, JobModifyIndex: 9 });
  });
  it('lists gateway processes as server members', () => {
    const nodes: GqlNode[] = [
      { id: 'n1', role: 'serve', host: 'gw1', pid: 1, startedAt: '2024-01-01T00:00:00Z', lastSeen: '2024-01-01T00:01:00Z', version: '0.1.0' },
      { id: 'n2', role: 'worker', host: 'wk1', pid: 2, startedAt: '2024-01-01T00:00:00Z', lastSeen: '2024-01-01T00:01:00Z', version: '0.1.0' },
    ];
    const m = udupMembers(nodes, restRequest()) as { ServerName: string; Members: { Name: string; Port: number }[] };
    expect(m.ServerName).toBe('gw1');
    expect(m.Members.map((x) => [x.Name, x.Port])).toEqual([['gw1.global', 8190]]);
  });
});

describe('responses and errors', () => {
  it('carries the query-meta headers', () => {
    expect(readResponse([], 0).headers).toEqual({ [UdupHeader.Index]: '1', [UdupHeader.KnownLeader]: 'true', [UdupHeader.LastContact]: '0' });
    expect(writeResponse(12)).toEqual({ json: { Index: 12, KnownLeader: false, LastContact: 0, Success: true }, headers: { [UdupHeader.Index]: '12', [UdupHeader.KnownLeader]: 'false', [UdupHeader.LastContact]: '0' } });
  });
  it('answers GraphQL errors as plain text with Udup\'s status, never echoing a password the caller sent', () => {
    const req = restRequest({ body: { Tasks: [task('Src', SRC)] } });
    expect(graphqlErrorResponse([{ message: 'x', extensions: { code: 'NOT_FOUND' } }], req)).toEqual({ status: 404, text: 'job not found', contentType: 'text/plain; charset=utf-8' });
    expect(graphqlErrorResponse([{ message: 'cannot connect as root:rootpw', extensions: { code: 'CONNECTION_FAILED' } }], req).text).toBe('cannot connect as root:*');
    expect(graphqlErrorResponse([{ message: 'stack here' }], req)).toMatchObject({ status: 500, text: 'internal error' });
    expect(redact('pw rootpw', restRequest())).toBe('pw rootpw');
  });
  it('pretty-prints with ?pretty (but not ?pretty=0)', () => {
    expect(isPretty(restRequest({ query: { pretty: '' } }))).toBe(true);
    expect(isPretty(restRequest({ query: { pretty: '0' } }))).toBe(false);
    expect(serialize({ a: 1 }, restRequest({ query: { pretty: '1' } }))).toBe('{\n    "a": 1\n}\n');
    expect(serialize({ a: 1 }, undefined)).toBe('{"a":1}');
  });
});

describe('blocking queries', () => {
  it('parses Go durations', () => {
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('1.5s')).toBe(1500);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('5')).toBeUndefined();
    expect(parseGoDuration('1x')).toBeUndefined();
  });
  it('waits only with an index, at most five minutes, and refuses malformed values', () => {
    expect(blockingParams(restRequest({ query: {} }))).toEqual({ index: 0, waitMs: 0 });
    expect(blockingParams(restRequest({ query: { index: '9' } }))).toEqual({ index: 9, waitMs: MAX_WAIT_MS });
    expect(blockingParams(restRequest({ query: { index: '9', wait: '2s' } }))).toEqual({ index: 9, waitMs: 2000 });
    expect(blockingParams(restRequest({ query: { index: '9', wait: '1h' } }))).toEqual({ index: 9, waitMs: MAX_WAIT_MS });
    expect(badRequest(() => blockingParams(restRequest({ query: { index: 'x' } })))).toBe('Invalid index');
    expect(badRequest(() => blockingParams(restRequest({ query: { index: '1', wait: 'soon' } })))).toBe('Invalid wait time');
  });
});
