import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { startTestGateway, gql, type TestGateway } from '../../support/gateway.ts';
import { printAppSchema } from '../../../src/server/schema.ts';
import { Role } from '../../../src/auth/roles.ts';

function wsClient(url: string, token?: string): Client {
  return createClient({ url, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0, connectionParams: token ? { authorization: `Bearer ${token}` } : {} });
}

function collect<T>(client: Client, query: string, until: (v: T[]) => boolean, timeoutMs = 15_000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    const timer = setTimeout(() => { dispose(); reject(new Error(`timeout; got ${JSON.stringify(out)}`)); }, timeoutMs);
    const dispose = client.subscribe<T>({ query }, {
      next: (v) => { if (v.errors) { clearTimeout(timer); reject(new Error(JSON.stringify(v.errors))); return; } out.push(v.data as T); if (until(out)) { clearTimeout(timer); dispose(); resolve(out); } },
      error: (e) => { clearTimeout(timer); reject(e instanceof Error ? e : new Error(JSON.stringify(e))); },
      complete: () => { clearTimeout(timer); resolve(out); },
    });
  });
}

describe('GraphQL gateway', () => {
  let gw: TestGateway;
  beforeAll(async () => { gw = await startTestGateway(); });
  afterAll(async () => { await gw?.close(); });

  it('answers version and lists this node from its heartbeat', async () => {
    const r = await gql(gw.url, '{ version nodes(first: 10) { totalCount pageInfo { hasNextPage } edges { cursor node { id role pid host startedAt lastSeen } } } }');
    expect(r.status).toBe(200);
    expect(r.body.data.version).toMatch(/^\d+\.\d+\.\d+/);
    const nodes = r.body.data.nodes.edges.map((e: any) => e.node);
    expect(nodes.some((n: any) => n.pid === process.pid && n.role === 'start')).toBe(true);
  });

  it('runs a noop task through BullMQ and streams its progress over graphql-ws', async () => {
    const r = await gql(gw.url, 'mutation { runNoop(steps: 3, stepMs: 150, message: "hi") { taskId } }');
    const taskId = r.body.data.runNoop.taskId;
    const client = wsClient(gw.wsUrl);
    const events = await collect<{ taskEvents: { state: string; progress: number | null; result: any } }>(
      client, `subscription { taskEvents(taskId: "${taskId}") { state progress result nodeId } }`,
      (v) => v.some((e) => e.taskEvents.state === 'completed'));
    await client.dispose();
    const last = events.at(-1)!.taskEvents;
    expect(last.state).toBe('completed');
    expect(last.result.message).toBe('hi');
    expect(last.result.steps).toBe(3);
  });

  it('shapes bad input as GraphQL errors with codes, never stack traces', async () => {
    const unknown = await gql(gw.url, '{ nope }');
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const parse = await gql(gw.url, '{ version ');
    expect(parse.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    const malformed = await fetch(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad json' });
    const mb = await malformed.json() as any;
    expect(mb.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const big = await fetch(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ version } #${'x'.repeat(11 * 1024 * 1024)}` }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as any).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    const sub = await gql(gw.url, 'subscription { taskEvents(taskId: "x") { state } }');
    expect(sub.status).toBe(400);
    expect(sub.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(sub.body.errors?.[0]?.message).toMatch(/graphql-ws/);
    const badArg = await gql(gw.url, 'mutation { runNoop(steps: 1000) { taskId } }');
    expect(badArg.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    for (const r of [unknown, parse, badArg]) expect(JSON.stringify(r.body)).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('limits depth and complexity', async () => {
    const deep = `{ nodes { edges { node { id } } pageInfo { hasNextPage } } ${'__typename '.repeat(1)} }`;
    expect((await gql(gw.url, deep)).body.data).toBeTruthy();
    const tooComplex = `{ ${Array.from({ length: 300 }, (_, i) => `a${i}: nodes(first: 1000) { totalCount }`).join(' ')} }`;
    const r = await gql(gw.url, tooComplex);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('paginates Relay-style', async () => {
    const r = await gql(gw.url, '{ nodes(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage endCursor } } }');
    expect(r.body.data.nodes.edges).toEqual([]);
    const bad = await gql(gw.url, '{ nodes(after: "!!") { totalCount } }');
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('checks bearer tokens with roles over HTTP and on connection_init', async () => {
    const reader = await gw.app.services.tokens.create('r', Role.Reader);
    const admin = await gw.app.services.tokens.create('a', Role.Admin);
    gw.app.services.auth.invalidate();
    // Tokens exist now: anonymous callers are refused.
    const anon = await gql(gw.url, '{ viewer { role } }');
    expect(anon.status).toBe(401);
    expect(anon.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const wrong = await gql(gw.url, '{ viewer { role } }', undefined, 'trb_wrong');
    expect(wrong.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const asReader = await gql(gw.url, '{ viewer { role openMode } }', undefined, reader.token);
    expect(asReader.body.data.viewer).toEqual({ role: 'reader', openMode: false });
    const forbidden = await gql(gw.url, 'mutation { runNoop(steps: 1) { taskId } }', undefined, reader.token);
    expect(forbidden.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const ok = await gql(gw.url, 'mutation { runNoop(steps: 1, stepMs: 0) { taskId } }', undefined, admin.token);
    expect(ok.body.data.runNoop.taskId).toBeTruthy();

    // graphql-ws: a bad token closes with 4401.
    const closed = await new Promise<number>((resolve) => {
      const ws = new WebSocket(gw.wsUrl, 'graphql-transport-ws');
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer trb_nope' } })));
      ws.on('close', (code) => resolve(code));
    });
    expect(closed).toBe(4401);
    const c = wsClient(gw.wsUrl, reader.token);
    const ev = await collect<any>(c, `subscription { taskEvents(taskId: "${ok.body.data.runNoop.taskId}") { state } }`, (v) => v.some((e) => e.taskEvents.state === 'completed'));
    expect(ev.at(-1).taskEvents.state).toBe('completed');
    await c.dispose();
    await gw.app.services.tokens.revoke(reader.row.id);
    await gw.app.services.tokens.revoke(admin.row.id);
    gw.app.services.auth.invalidate();
  });

  it('serves health, readiness and metrics', async () => {
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    expect((await fetch(`${gw.url}/ready`)).status).toBe(200);
    const m = await (await fetch(`${gw.url}/metrics`)).text();
    expect(m).toContain('tributary_graphql_operations_total');
    expect(m).toContain('tributary_http_request_duration_seconds');
    expect(m).toMatch(/tributary_queue_jobs\{queue="tasks",state="waiting"\}/);
  });

  it('keeps schema/schema.graphql current', async () => {
    const checkedIn = readFileSync(new URL('../../../schema/schema.graphql', import.meta.url), 'utf8');
    expect(checkedIn, 'schema/schema.graphql is stale: run npm run schema:print').toBe(await printAppSchema());
  });
});
