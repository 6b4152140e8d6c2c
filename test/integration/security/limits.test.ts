/**
 * The limits of docs/security.md ("Limits"), each with its error: GraphQL
 * depth and aliases, page size, body size, the per-token rate limit (in the
 * caller's dialect, shared by two gateways through Redis), subscriptions per
 * graphql-ws connection and long-poll waiters.
 */
import { afterAll, describe, expect, it, inject } from 'vitest';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestGateway, gql, type TestGateway } from '../../support/gateway.ts';

const started: TestGateway[] = [];
async function gateway(overrides: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startTestGateway(overrides as never, { worker: false });
  started.push(gw);
  return gw;
}
afterAll(async () => { await Promise.all(started.map((g) => g.close())); });

describe('limits', () => {
  it('GraphQL: depth, aliases and page size answer QUERY_TOO_COMPLEX / BAD_USER_INPUT', async () => {
    const gw = await gateway({ graphqlMaxAliases: 50 });
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: version`).join(' ')} }`;
    expect((await gql(gw.url, aliases(50))).body.errors).toBeUndefined();
    const over = await gql(gw.url, aliases(51));
    expect(over.status).toBe(400);
    expect(over.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    expect(over.body.errors?.[0]?.message).toContain('more than 50 aliases');
    // Aliases inside fragments count where they are spread.
    const frag = await gql(gw.url, `query { ...F ...F2 } fragment F on Query { ${Array.from({ length: 30 }, (_, i) => `f${i}: version`).join(' ')} } fragment F2 on Query { ${Array.from({ length: 30 }, (_, i) => `g${i}: version`).join(' ')} }`);
    expect(frag.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    const deep = await gql(gw.url, `{ ${'a { '.repeat(13)}b${' }'.repeat(13)} }`);
    expect(deep.status).toBe(400);
    expect(deep.body.errors?.map((e) => e.extensions?.code)).toContain('QUERY_TOO_COMPLEX');
    expect(deep.body.errors?.map((e) => e.message).join(' ')).toContain('exceeds the limit of 12');
    const page = await gql(gw.url, '{ jobs(first: 1001) { totalCount } }');
    expect(page.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(page.body.errors?.[0]?.message).toContain('1000');
    const big = await fetch(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ version } #${'x'.repeat(11 * 1024 * 1024)}` }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as any).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    const udupBig = await fetch(`${gw.url}/v1/jobs`, { method: 'POST', body: `{"Name":"${'x'.repeat(1100 * 1024)}"}` });
    expect(udupBig.status).toBe(413);
    expect(udupBig.headers.get('content-type')).toContain('text/plain');
  });

  it('rate limit: 429 in every dialect with Retry-After, counted across two gateways sharing Redis; /health is never limited', async () => {
    const a = await gateway({ rateLimitPerSecond: 5 });
    const b = await gateway({ rateLimitPerSecond: 5, queuePrefix: a.config.queuePrefix, databaseUrl: a.config.databaseUrl });
    // Ten requests at once, half through each gateway: one window holds at most five.
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`${(i % 2 ? a : b).url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ version }' }) })));
    const limited = burst.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(4);
    expect(burst.filter((r) => r.status === 200).length).toBeLessThanOrEqual(6);
    const body = (await limited[0]!.json()) as any;
    expect(body.errors[0].extensions.code).toBe('RATE_LIMITED');
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Every dialect, once the window is used up.
    const exhaust = () => Promise.all(Array.from({ length: 6 }, () => fetch(`${a.url}/health`).then(() => fetch(`${a.url}/v1/leader`))));
    await new Promise((r) => setTimeout(r, 1100));
    await exhaust();
    const health = await fetch(`${a.url}/health`);
    expect(health.status).toBe(200);
    const udup = await fetch(`${a.url}/v1/jobs`);
    expect(udup.status).toBe(429);
    expect(udup.headers.get('content-type')).toContain('text/plain');
    expect(await udup.text()).toContain('rate limit exceeded');
    const cello = await fetch(`${a.url}/v2/clusters`);
    expect(cello.status).toBe(429);
    expect(await cello.json()).toMatchObject({ status: 'FAIL', code: 429 });
    const cs = await fetch(`${a.url}/checkJobStatus`, { method: 'POST', body: 'environmentId=x' });
    expect(cs.status).toBe(429);
    expect(await cs.json()).toMatchObject({ code: 'RATE_LIMITED' });
    const changes = await fetch(`${a.url}/feeds/x/changes?scope=a`);
    expect(changes.status).toBe(429);
    expect(await changes.json()).toMatchObject({ code: 'RATE_LIMITED', error: 'Too many requests for this token' });
    const fate = await fetch(`${a.url}/v1/job/query`, { method: 'POST', body: '{}' });
    expect(fate.status).toBe(429);
    expect(await fate.json()).toMatchObject({ retcode: 101 });
    // The next window admits requests again.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await gql(a.url, '{ version }')).status).toBe(200);
  });

  it('graphql-ws: at most N active subscriptions per connection (LIMIT_EXCEEDED), freed on complete', async () => {
    const gw = await gateway({ maxSubscriptionsPerConnection: 2 });
    const client: Client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
    const open = (id: string) => {
      let error: unknown;
      const dispose = client.subscribe({ query: `subscription { taskEvents(taskId: "${id}") { state } }` }, { next: () => undefined, error: (e) => { error = e; }, complete: () => undefined });
      return { dispose, error: () => error };
    };
    const s1 = open('t1');
    const s2 = open('t2');
    await new Promise((r) => setTimeout(r, 300));
    const s3 = open('t3');
    await new Promise((r) => setTimeout(r, 300));
    expect(s1.error(), JSON.stringify(s1.error())).toBeUndefined();
    expect(s2.error()).toBeUndefined();
    const err = s3.error() as { message: string; extensions: { code: string } }[];
    expect(err?.[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');
    expect(err?.[0]?.message).toContain('the limit is 2');
    s1.dispose();
    await new Promise((r) => setTimeout(r, 300));
    const s4 = open('t4');
    await new Promise((r) => setTimeout(r, 300));
    expect(s4.error()).toBeUndefined();
    s2.dispose(); s4.dispose();
    await client.dispose();
  });

  it('long-poll waiters: past the limit a blocking read is 503 SERVICE_UNAVAILABLE at once', async () => {
    const gw = await gateway({ maxLongPollWaiters: 1 });
    const pg = new URL(inject('pgUrl'));
    const conn = { kind: 'POSTGRES', host: '127.0.0.1', port: Number(pg.port), user: 'postgres', password: 'x', database: 'postgres' };
    const job = await gql(gw.url, 'mutation($i: JobInput!) { createJob(input: $i) { name } }', { i: { name: 'lp_feed', type: 'SUBSCRIBE', source: conn, paused: true } });
    expect(job.body.errors, JSON.stringify(job.body.errors)).toBeUndefined();
    const first = fetch(`${gw.url}/feeds/lp_feed/changes?scope=a&block=2`);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const second = await fetch(`${gw.url}/feeds/lp_feed/changes?scope=a&block=2`);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(second.status).toBe(503);
    const body = (await second.json()) as any;
    expect(body.code).toBe('SERVICE_UNAVAILABLE');
    expect(body.description).toContain('the limit is 1');
    const g = await gql(gw.url, '{ changes(feed: "lp_feed", scopes: ["a"], block: 1) { lastSequence } }');
    expect(g.body.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect((await first).status).toBe(200);
    // The waiter is gone: the next one waits again.
    expect((await fetch(`${gw.url}/feeds/lp_feed/changes?scope=a&block=1`)).status).toBe(200);
  });
});
