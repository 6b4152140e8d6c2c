/**
 * The route-table machinery over real HTTP (an Express app on an ephemeral
 * port): input reading, lookups, GraphQL errors, RestErrors, 405, 413, long
 * polls, and the OpenAPI document. The GraphQL executor is a function that
 * answers from the operation text, as the server's would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import type { GraphQLExecutor, GraphQLRequest } from '../../../src/rest-compat/executor.ts';
import { RestError, defineRoute, mountRoutes, openApiFor, type RestDialect, type RestRoute } from '../../../src/rest-compat/rest-route.ts';

const dialect: RestDialect = {
  error: (err) => ({ status: err.status, json: { error: err.message, code: err.code ?? null } }),
  graphqlError: (errors) => ({ status: 422, json: { graphql: errors.map((e) => e.message) } }),
};

let counter = 0;
const calls: GraphQLRequest[] = [];
const executor: GraphQLExecutor = async <T,>(req: GraphQLRequest) => {
  calls.push(req);
  if (req.query.includes('Fail')) return { errors: [{ message: 'no such thing', extensions: { code: 'NOT_FOUND' } }] };
  if (req.query.includes('Counter')) return { data: { n: ++counter } as T };
  if (req.query.includes('Lookup')) return { data: { thing: { id: req.variables?.id, kind: 'widget' } } as T };
  return { data: { echo: req.variables ?? null, auth: req.authorization ?? null } as T };
};

const routes: RestRoute[] = [
  defineRoute<{ echo: unknown; auth: string | null }>({
    method: 'POST', path: '/json/:id', input: 'json', summary: 'Echo JSON', tags: ['Echo'], requestExample: { a: 1 },
    operation: 'mutation Echo($id: ID!, $a: Int) { echo }',
    variables: (req) => ({ id: req.params.id, a: req.input.a }),
    result: (d) => ({ json: d }),
  }),
  defineRoute({
    method: ['POST', 'PUT'], path: '/form', input: 'form', summary: 'Echo a form',
    operation: 'mutation Echo { echo }', variables: (req) => ({ ...req.input }), result: (d) => ({ json: d }),
  }),
  defineRoute({
    method: 'GET', path: '/query', input: 'query', summary: 'Echo the query string',
    operation: 'query Echo { echo }', variables: (req) => ({ ...req.input }), result: (d: { echo: unknown }) => ({ text: JSON.stringify(d.echo) }),
  }),
  defineRoute({ method: 'GET', path: '/fail', input: 'query', summary: 'GraphQL error', operation: 'query Fail { x }', result: () => ({ json: 'unreachable' }) }),
  defineRoute({ method: 'GET', path: '/teapot', input: 'query', summary: 'RestError', operation: undefined, result: () => { throw new RestError(418, 'short and stout', 'TEAPOT'); } }),
  defineRoute({ method: 'GET', path: '/boom', input: 'query', summary: 'Internal', operation: undefined, result: () => { throw new Error('secret detail'); } }),
  defineRoute<{ echo: unknown }, { thing: { id: string; kind: string } }>({
    method: 'GET', path: '/things/:id', input: 'query', summary: 'Lookup then operate',
    lookup: { operation: 'query Lookup($id: ID!) { thing }', variables: (req) => ({ id: req.params.id }) },
    operation: (_req, lookup) => (lookup?.thing.kind === 'widget' ? 'query Echo { echo }' : undefined),
    variables: (_req, lookup) => ({ kind: lookup?.thing.kind }),
    result: (d, _req, lookup) => ({ json: { data: d, lookup } }),
  }),
  defineRoute<{ n: number }>({
    method: 'GET', path: '/poll', input: 'query', summary: 'Long poll',
    operation: 'query Counter { n }',
    longPoll: { waitMs: (req) => Number(req.query.wait ?? 0), ready: (d, _req, initial) => d.n >= initial.n + 2 },
    result: (d) => ({ json: d }),
  }),
];

/** A JSON answer, typed loosely for assertions. */
const body = async (r: Response): Promise<any> => r.json();

let server: Server;
let base: string;
const errors: unknown[] = [];

beforeAll(async () => {
  const app = express();
  app.use(mountRoutes(express.Router(), routes, executor, { dialect, maxBodyBytes: 64, pollIntervalMs: 10, headers: { 'X-Api': 'test' }, onInternalError: (e) => errors.push(e) }));
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => { await new Promise<void>((r) => server.close(() => r())); });

describe('mountRoutes', () => {
  it('reads a JSON body and path params into variables, passes Authorization through, sets common headers', async () => {
    const res = await fetch(`${base}/json/7`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer t' }, body: '{"a":1}' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-api')).toBe('test');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await body(res)).toEqual({ echo: { id: '7', a: 1 }, auth: 'Bearer t' });
  });

  it('answers a malformed JSON body with 400 in the dialect, before any operation runs', async () => {
    const before = calls.length;
    const res = await fetch(`${base}/json/7`, { method: 'POST', body: '{nope' });
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatch(/^malformed JSON body/);
    expect(calls.length).toBe(before);
  });

  it('reads forms (repeated keys as lists) and query strings', async () => {
    const form = await fetch(`${base}/form`, { method: 'PUT', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=x&b=y' });
    expect((await body(form)).echo).toEqual({ a: '1', b: ['x', 'y'] });
    const q = await fetch(`${base}/query?x=1&y=2`);
    expect(q.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await q.text()).toBe('{"x":"1","y":"2"}');
  });

  it('answers GraphQL errors with the dialect\'s graphqlError', async () => {
    const res = await fetch(`${base}/fail`);
    expect(res.status).toBe(422);
    expect(await body(res)).toEqual({ graphql: ['no such thing'] });
  });

  it('answers a RestError from a hook in the dialect, and an unexpected error as a 500 that hides its detail', async () => {
    const tea = await fetch(`${base}/teapot`);
    expect(tea.status).toBe(418);
    expect(await body(tea)).toEqual({ error: 'short and stout', code: 'TEAPOT' });
    const boom = await fetch(`${base}/boom`);
    expect(boom.status).toBe(500);
    expect(await body(boom)).toEqual({ error: 'internal error', code: null });
    expect(errors.some((e) => (e as Error).message === 'secret detail')).toBe(true);
  });

  it('answers other methods on a known path with 405 and Allow (HEAD comes with GET)', async () => {
    const res = await fetch(`${base}/query`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect((await body(res)).error).toBe('method DELETE not allowed on /query');
    const head = await fetch(`${base}/query?x=1`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await fetch(`${base}/json/1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(200) }) });
    expect(res.status).toBe(413);
    expect((await body(res)).error).toBe('request body exceeds 64 bytes');
  });

  it('runs the lookup first and hands its data to the operation choice, variables and result', async () => {
    const res = await fetch(`${base}/things/w1`);
    expect(await body(res)).toEqual({ data: { echo: { kind: 'widget' }, auth: null }, lookup: { thing: { id: 'w1', kind: 'widget' } } });
  });

  it('long-polls: re-runs the operation until ready, or answers at once without a wait', async () => {
    const start = counter;
    const waited = await body(await fetch(`${base}/poll?wait=2000`));
    expect(waited.n).toBe(start + 3);
    const now = await body(await fetch(`${base}/poll`));
    expect(now.n).toBe(start + 4);
  });
});

describe('openApiFor', () => {
  const doc = openApiFor(routes, { title: 'Test API', version: '1' }) as { openapi: string; paths: Record<string, Record<string, Record<string, unknown>>> };
  it('describes every path and method, with path parameters and request bodies by input kind', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/json/{id}');
    const post = doc.paths['/json/{id}']!.post!;
    expect(post).toMatchObject({ operationId: 'postJsonId', summary: 'Echo JSON', tags: ['Echo'] });
    expect(post.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
    expect(post.requestBody).toEqual({ required: false, content: { 'application/json': { example: { a: 1 } } } });
    expect(Object.keys(doc.paths['/form']!)).toEqual(['post', 'put']);
    expect(doc.paths['/form']!.put!.requestBody).toEqual({ required: false, content: { 'application/x-www-form-urlencoded': { schema: {} } } });
    expect(doc.paths['/query']!.get!.requestBody).toBeUndefined();
    expect(doc.paths['/query']!.get!.responses).toEqual({ 200: { description: 'OK' } });
  });
});
