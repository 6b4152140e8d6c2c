/**
 * Property-based malformed input for every GraphQL operation, generated from
 * the checked-in schema (schema/schema.graphql): for each root field of
 * Query, Mutation and Subscription, operations with typed variables holding
 * wrong or extreme values, inline literals of the wrong kind, missing and
 * unknown arguments, many aliases, deep selections, plus raw transport junk
 * (bad JSON, batches, GET mutations). Subscriptions run over HTTP (a 400) and
 * over graphql-ws. Every answer: within ANSWER_TIMEOUT_MS, no 5xx, no stack
 * trace, every error with a known extensions.code and none
 * INTERNAL_SERVER_ERROR; /health answers after each batch. Every root field
 * runs by default, mutations included (cluster stop/start/restart/release
 * once hung: see the regression test below).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import fc from 'fast-check';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import {
  buildSchema, getNamedType, isEnumType, isInputObjectType, isListType, isNonNullType, isObjectType, isScalarType,
  type GraphQLField, type GraphQLInputType, type GraphQLObjectType, type GraphQLOutputType,
} from 'graphql';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { ErrorCode } from '../../src/errors.ts';
import { commonProblems, junkJson, junkString, sanitize, truncate, type CaseFailure, fetchOnce, fuzzSeed, ANSWER_TIMEOUT_MS, answerStats } from './support.ts';
import { reportCases } from './case-count.ts';

const BATCH = 8;
/** RUNS batches of 8 per root field, 5 x RUNS of transport junk, 3 x RUNS over graphql-ws (default 12: 5,952 cases for the 54 root fields). */
const RUNS = Number(process.env.FUZZ_GRAPHQL_RUNS ?? 12);
const schema = buildSchema(readFileSync(new URL('../../schema/schema.graphql', import.meta.url), 'utf8'));
const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** FUZZ_OPS=<fields> runs exactly the named root fields (default: every root field of the schema). */
const ONLY_OPS = process.env.FUZZ_OPS?.split(',').filter(Boolean);

type Root = 'query' | 'mutation' | 'subscription';
interface Op { root: Root; field: GraphQLField<unknown, unknown> }

const OPS: Op[] = (['query', 'mutation', 'subscription'] as const).flatMap((root) => {
  const t = root === 'query' ? schema.getQueryType() : root === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  return t ? Object.values(t.getFields()).map((field) => ({ root, field })) : [];
}).filter((o) => !ONLY_OPS || ONLY_OPS.includes(o.field.name));

// ------------------------------------------------------------------ values

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

function scalarArb(name: string): fc.Arbitrary<unknown> {
  const wrong = fc.oneof(junkString.map((s) => s.slice(0, 300)), fc.constantFrom(null, true, 1.5, -1, [], {}, 2 ** 53, 'x'));
  const right: Record<string, fc.Arbitrary<unknown>> = {
    Int: fc.oneof(fc.integer({ min: -2, max: 1200 }), fc.integer(), fc.constantFrom(2 ** 31, -(2 ** 31) - 1)),
    Float: fc.oneof(fc.double(), fc.integer()),
    Boolean: fc.boolean(),
    String: junkString.map((s) => s.slice(0, 3000)),
    ID: fc.oneof(junkString.map((s) => s.slice(0, 200)), fc.constantFrom('1', '0', '00000000-0000-0000-0000-000000000000', 'nope')),
    JSON: junkJson.filter((v) => (JSON.stringify(v)?.length ?? 0) < 50_000),
    DateTimeISO: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), junkString),
  };
  return fc.oneof({ weight: 4, arbitrary: right[name] ?? junkString }, { weight: 1, arbitrary: wrong });
}

function valueArb(type: GraphQLInputType, depth = 0): fc.Arbitrary<unknown> {
  if (isNonNullType(type)) return fc.oneof({ weight: 12, arbitrary: valueArb(type.ofType as GraphQLInputType, depth) }, { weight: 1, arbitrary: fc.constant(null) });
  if (depth > 5) return fc.constant(null);
  if (isListType(type)) {
    const inner = valueArb(type.ofType as GraphQLInputType, depth + 1);
    return fc.oneof(
      { weight: 6, arbitrary: fc.array(inner, { maxLength: 3 }) },
      { weight: 1, arbitrary: fc.nat({ max: 3000 }).map((n) => Array.from({ length: n }, (_, i) => `v${i}`)) },
      { weight: 1, arbitrary: inner },
    );
  }
  if (isEnumType(type)) return fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...type.getValues().map((v) => v.name)) }, { weight: 1, arbitrary: junkString.map((s) => s.slice(0, 50)) });
  if (isScalarType(type)) return scalarArb(type.name);
  if (isInputObjectType(type)) {
    const fields = Object.values(type.getFields());
    const model: Record<string, fc.Arbitrary<unknown>> = {};
    for (const f of fields) model[f.name] = valueArb(f.type, depth + 1);
    const required = fields.filter((f) => isNonNullType(f.type)).map((f) => f.name);
    return fc.tuple(
      fc.record(model, { requiredKeys: required }),
      fc.oneof({ weight: 8, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), junkJson, { maxKeys: 2 }) }),
      fc.oneof({ weight: 8, arbitrary: fc.constant<string | undefined>(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...(fields.length ? fields.map((f) => f.name) : ['x'])) }),
    ).map(([v, extra, drop]) => { const out: Record<string, unknown> = { ...v, ...extra }; if (drop) delete out[drop]; return out; });
  }
  return junkJson;
}

/** A JSON value as a GraphQL literal (for inline arguments of the wrong kind). */
function literal(v: unknown, depth = 0): string {
  if (depth > 40) return 'null';
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '0';
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => literal(x, depth + 1)).join(', ')}]`;
  return `{${Object.entries(v as Record<string, unknown>).filter(([k]) => NAME.test(k)).map(([k, x]) => `${k}: ${literal(x, depth + 1)}`).join(', ')}}`;
}

// ------------------------------------------------------------------ selections

function selection(type: GraphQLOutputType, depth: number, maxDepth: number, wide: boolean): string {
  const named = getNamedType(type);
  if (!isObjectType(named)) return '';
  const fields = Object.values((named as GraphQLObjectType).getFields()).filter((f) => f.args.every((a) => !isNonNullType(a.type) || a.defaultValue !== undefined));
  const leaves = fields.filter((f) => !isObjectType(getNamedType(f.type)));
  const objects = fields.filter((f) => isObjectType(getNamedType(f.type)));
  const parts = (wide ? leaves : leaves.slice(0, 3)).map((f) => f.name);
  if (parts.length === 0) parts.push('__typename');
  if (depth < maxDepth) for (const f of wide ? objects : objects.slice(0, 1)) parts.push(`${f.name} ${selection(f.type, depth + 1, maxDepth, wide)}`);
  return `{ ${parts.join(' ')} }`;
}

// ------------------------------------------------------------------ operations

interface GqlCase { root: Root; query: string; variables: Record<string, unknown>; label: string }

function caseArb(op: Op, ports: number[]): fc.Arbitrary<GqlCase> {
  const args = op.field.args;
  const vars = fc.tuple(...(args.length ? args.map((a) => valueArb(a.type)) : [fc.constant(undefined)]));
  return fc.record({
    mode: fc.constantFrom('vars', 'vars', 'vars', 'inline', 'missing', 'unknownArg', 'aliases', 'deep', 'wide', 'junkQuery'),
    values: vars,
    inlineValues: fc.array(junkJson, { minLength: Math.max(args.length, 1), maxLength: Math.max(args.length, 1) }),
    drop: fc.nat({ max: Math.max(args.length - 1, 0) }),
    aliases: fc.oneof(fc.integer({ min: 2, max: 30 }), fc.integer({ min: 31, max: 400 })),
    depth: fc.integer({ min: 0, max: 25 }),
    junk: fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('{', '}', '{ __schema { types { name } } }', 'query { ...F } fragment F on Query { ...F }', 'query ($a: Int = "x") { version }', 'subscription { version }', `{ ${'version '.repeat(5000)}}`, `${'{ a '.repeat(500)}`, 'query Q { version } query Q { version }', '{ version @skip(if: "yes") }')),
  }).map(({ mode, values, inlineValues, drop, aliases, depth, junk }) => {
    const name = op.field.name;
    const sel = selection(op.field.type, 0, mode === 'deep' ? depth : 1, mode === 'wide');
    let used = args.map((a, i) => ({ a, v: values[i] }));
    if (mode === 'missing') used = used.filter((_, i) => i !== drop);
    const variables: Record<string, unknown> = {};
    let call: string;
    let decl = '';
    if (mode === 'inline') {
      call = used.map(({ a }, i) => `${a.name}: ${literal((sanitize({ [a.name]: inlineValues[i] }, ports) as Record<string, unknown>)[a.name])}`).join(', ');
    } else {
      decl = used.map(({ a }) => `$${a.name}: ${a.type.toString()}`).join(', ');
      call = used.map(({ a }) => `${a.name}: $${a.name}`).join(', ');
      for (const { a, v } of used) if (v !== undefined) variables[a.name] = v;
      if (mode === 'unknownArg') call = [call, 'nope: 1'].filter(Boolean).join(', ');
    }
    const invoke = `${name}${call ? `(${call})` : ''} ${sel}`;
    const body = mode === 'aliases' ? Array.from({ length: aliases }, (_, i) => `a${i}: ${invoke}`).join('\n') : invoke;
    const query = mode === 'junkQuery' ? junk : `${op.root} Fuzz${decl ? `(${decl})` : ''} { ${body} }`;
    const safe = sanitize(variables, ports) as Record<string, unknown>;
    // A valid long poll waits: keep `block` to a second at most.
    if (typeof safe.block === 'number') safe.block = Math.min(Math.max(safe.block, -1), 1);
    return { root: op.root, query, variables: safe, label: `${op.root} ${name} (${mode})` };
  });
}

/** Transport-level junk on /graphql. */
const transportArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'),
  contentType: fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/graphql', 'multipart/form-data'),
  body: fc.oneof(
    junkJson.map((v) => JSON.stringify(v) ?? 'null'),
    fc.constantFrom('{bad json', '[{"query":"{ version }"},{"query":"{ version }"}]', '{"query": 5}', '{"query": "{ version }", "variables": "x"}', '{"query": "{ version }", "variables": [1]}',
      '{"query": "{ version }", "operationName": 7}', '{"query": "{ version }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "x"}}}', '{"query":"mutation { runNoop(steps: 1) { taskId } }"}', ''),
  ),
  qs: fc.constantFrom('', '?query=%7Bversion%7D', '?query=mutation%7BrunNoop%7BtaskId%7D%7D', '?query=%7B', '?variables=%7B', '?query=%7Bversion%7D&variables=x', '?extensions=%7B%7D'),
});

interface Answer { status: number; text: string }

function graphqlProblems(ans: Answer, isSubscriptionOverHttp: boolean): string | undefined {
  const common = commonProblems({ status: ans.status, headers: new Headers(), text: ans.text });
  if (common) return common;
  if (ans.status === 431 && ans.text === '') return undefined;
  let body: { data?: unknown; errors?: { message?: unknown; extensions?: { code?: unknown } }[] };
  try { body = JSON.parse(ans.text); } catch { return `not JSON (${ans.status})`; }
  if (!body || typeof body !== 'object' || (!('data' in body) && !('errors' in body))) return 'neither data nor errors';
  for (const e of body.errors ?? []) {
    const code = e?.extensions?.code;
    if (typeof e?.message !== 'string') return 'error without message';
    if (typeof code !== 'string' || !KNOWN_CODES.has(code)) return `unknown error code ${String(code)}`;
    if (code === ErrorCode.Internal) return `INTERNAL_SERVER_ERROR: ${e.message}`;
  }
  if (isSubscriptionOverHttp && ans.status !== 400) return `subscription over HTTP answered ${ans.status}`;
  return undefined;
}

describe('GraphQL fuzzing: every operation of the schema', () => {
  let gw: TestGateway;
  let ports: number[];
  let total = 0;
  let testsRun = 0;
  /** The root-field tests, transport junk, graphql-ws, and the regression test. */
  const TESTS_DECLARED = 6;
  beforeAll(async () => {
    gw = await startTestGateway({ rateLimitPerSecond: 0 } as never, { worker: false });
    ports = [inject('pgUrl'), inject('mariaUrl')].map((u) => Number(new URL(u).port));
  });
  afterAll(async () => {
    console.log(`GraphQL fuzz: ${total} cases over ${OPS.length} root fields; slowest answer ${answerStats.slowestMs} ms (${answerStats.slowest})`);
    reportCases(inject('fuzzCountDir'), { file: 'graphql', cases: total, testsRun, testsDeclared: TESTS_DECLARED, slowestMs: answerStats.slowestMs });
    await gw?.close();
  });

  // Regression (the "mutation hang" finding): an error message echoing a huge id went through
  // maskSecrets, whose URL regex backtracked quadratically; 200,000 characters blocked the event
  // loop for minutes and every other request of the gateway hung behind it.
  it('an error echoing a 200,000-character id answers at once and blocks nobody', async () => {
    testsRun++;
    const id = 'x'.repeat(200_000);
    const t0 = performance.now();
    const answers = await Promise.all([
      ...['stopCluster', 'startCluster', 'restartCluster'].map((f) => `mutation { ${f}(id: "${id}") { id } }`),
      `mutation { releaseCluster(clusterId: "${id}") { id } }`,
      `query { job(id: "${id}") { id } }`,
    ].map(async (query) => {
      const res = await fetchOnce(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }), signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
      return { query: query.slice(0, 40), status: res.status, text: await res.text() };
    }).concat([fetchOnce(`${gw.url}/health`).then(async (r) => ({ query: '/health', status: r.status, text: await r.text() }))]));
    expect(performance.now() - t0).toBeLessThan(10_000);
    for (const a of answers) {
      expect(a.status, a.query).toBeLessThan(500);
      if (a.query !== '/health') expect(graphqlProblems(a, false), a.query).toBeUndefined();
    }
    expect(answers.slice(0, 4).map((a) => JSON.parse(a.text).errors?.[0]?.extensions?.code)).toEqual(Array(4).fill(ErrorCode.NotFound));
  });

  async function post(c: GqlCase): Promise<CaseFailure | undefined> {
    const request = truncate(`${c.label}: ${c.query} ${JSON.stringify(c.variables)}`, 800);
    try {
      const res = await fetchOnce(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: c.query, variables: c.variables }), signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
      const text = await res.text();
      const problem = graphqlProblems({ status: res.status, text }, c.root === 'subscription' && !c.label.endsWith('(junkQuery)'));
      return problem ? { reason: problem, request, status: res.status, body: truncate(text) } : undefined;
    } catch (err) {
      return { reason: `no answer: ${(err as Error).message}`, request, status: 0, body: '' };
    }
  }

  async function check(cases: (() => Promise<CaseFailure | undefined>)[], failures: CaseFailure[]): Promise<boolean> {
    const results = await Promise.all(cases.map((f) => f()));
    total += cases.length;
    const bad = results.filter((r): r is CaseFailure => !!r);
    const health = await fetchOnce(`${gw.url}/health`);
    if (health.status !== 200) bad.push({ reason: '/health no longer answers 200', request: '', status: health.status, body: await health.text() });
    failures.push(...bad);
    return bad.length === 0;
  }

  const runProperty = async (arb: fc.Arbitrary<(() => Promise<CaseFailure | undefined>)[]>, runs: number) => {
    const failures: CaseFailure[] = [];
    await fc.assert(fc.asyncProperty(arb, (cases) => check(cases, failures)), { numRuns: runs, endOnFailure: true, seed: fuzzSeed() })
      .catch((err) => { if (!failures.length) throw err; console.log(String((err as Error).message).split('\n').slice(0, 3).join('\n')); });
    expect(failures.slice(0, 5), JSON.stringify(failures.slice(0, 5), null, 2)).toEqual([]);
  };

  for (const root of ['query', 'mutation', 'subscription'] as const) {
    const ops = OPS.filter((o) => o.root === root);
    it.skipIf(ops.length === 0)(`${root}: ${ops.length} operations over HTTP`, async () => {
      testsRun++;
      const arb = fc.oneof(...ops.map((op) => fc.array(caseArb(op, ports), { minLength: BATCH, maxLength: BATCH })))
        .map((cases) => cases.map((c) => () => post(c)));
      await runProperty(arb, RUNS * ops.length);
    }, 600_000);
  }

  it('transport junk on /graphql', async () => {
    testsRun++;
    const arb = fc.array(transportArb, { minLength: BATCH, maxLength: BATCH }).map((cases) => cases.map((t) => async (): Promise<CaseFailure | undefined> => {
      const request = `${t.method} /graphql${t.qs} ${t.contentType ?? ''} ${truncate(t.body, 200)}`;
      const res = await fetchOnce(`${gw.url}/graphql${t.qs}`, {
        method: t.method, headers: t.contentType ? { 'content-type': t.contentType, 'apollo-require-preflight': 'true' } : { 'apollo-require-preflight': 'true' },
        body: ['GET', 'HEAD'].includes(t.method) ? undefined : t.body, signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
      });
      const text = await res.text();
      const common = commonProblems({ status: res.status, headers: res.headers, text });
      if (common) return { reason: common, request, status: res.status, body: truncate(text) };
      if (t.method === 'GET' && t.qs.includes('mutation') && text.includes('"taskId"')) return { reason: 'a GET ran a mutation', request, status: res.status, body: truncate(text) };
      if (res.headers.get('content-type')?.includes('json')) {
        const p = graphqlProblems({ status: res.status, text }, false);
        if (p) return { reason: p, request, status: res.status, body: truncate(text) };
      }
      return undefined;
    }));
    await runProperty(arb, RUNS * 5);
  }, 600_000);

  const subs = OPS.filter((o) => o.root === 'subscription');
  it.skipIf(subs.length === 0)('subscriptions over graphql-ws', async () => {
    testsRun++;
    const client = createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
    try {
      const arb = fc.oneof(...subs.map((op) => fc.array(caseArb(op, ports), { minLength: BATCH, maxLength: BATCH })))
        .map((cases) => cases.map((c) => () => new Promise<CaseFailure | undefined>((resolve) => {
          const request = truncate(`${c.label}: ${c.query} ${JSON.stringify(c.variables)}`, 800);
          let settled = false;
          const done = (v: CaseFailure | undefined) => { if (!settled) { settled = true; clearTimeout(timer); dispose(); resolve(v); } };
          const inspect = (payload: unknown) => {
            const text = JSON.stringify(payload) ?? '';
            const errs = (payload as { errors?: unknown[] })?.errors ?? (Array.isArray(payload) ? payload : []);
            const p = commonProblems({ status: 200, headers: new Headers(), text }) ?? graphqlProblems({ status: 200, text: JSON.stringify({ errors: errs, data: null }) }, false);
            return p ? { reason: `ws: ${p}`, request, status: 0, body: truncate(text) } : undefined;
          };
          const timer = setTimeout(() => done(undefined), 300);
          const dispose = client.subscribe({ query: c.query, variables: c.variables }, {
            next: (v) => { const p = inspect(v); if (p || v.errors) done(p); },
            error: (e) => done(e instanceof Error ? { reason: `ws transport error: ${e.message}`, request, status: 0, body: '' } : inspect(Array.isArray(e) ? { errors: e } : e)),
            complete: () => done(undefined),
          });
        })));
      await runProperty(arb, RUNS * 3);
    } finally {
      await client.dispose();
    }
  }, 600_000);
});
