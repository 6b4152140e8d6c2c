/**
 * Property-based malformed input for every REST route of the five legacy
 * dialects, against one in-process gateway (no workers: nothing queued runs).
 * Routes come from the route tables themselves, so a new route is fuzzed
 * without touching this file. Each case: a method (mostly the route's own),
 * path parameters, a query string with quirks, a body (a mutated request
 * example, junk JSON, bad JSON, bad form encoding, bytes, oversize) and
 * headers. Every answer must come within ANSWER_TIMEOUT_MS, have no stack
 * trace, no undocumented 5xx, and errors in the dialect's own shape; /health
 * must still answer after each batch.
 *
 * FUZZ_RUNS scales the number of batches of 8 (default 150: 1,200 cases per dialect, 6,000 in all).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import fc from 'fast-check';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { fateFlowRoutes } from '../../src/rest-compat/fate-flow/index.ts';
import { connectionServiceRoutes } from '../../src/rest-compat/connection-service/index.ts';
import { celloRoutes } from '../../src/rest-compat/cello/index.ts';
import { udupRoutes } from '../../src/rest-compat/udup/index.ts';
import { changeserverRoutes } from '../../src/rest-compat/changeserver/changeserver.routes.ts';
import { methodsOf, type RestRoute } from '../../src/rest-compat/rest-route.ts';
import { commonProblems, encode, junkJson, junkString, sanitize, sanitizeFlat, truncate, type CaseFailure, type FuzzResponse, fetchOnce, fuzzSeed, ANSWER_TIMEOUT_MS, answerStats } from './support.ts';
import { reportCases } from './case-count.ts';

const BATCH = 8;
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);

type Shape = (res: FuzzResponse, json: unknown) => string | undefined;

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** How each dialect words an error (docs/compat.md). */
const SHAPES: Record<string, Shape> = {
  udup: (res) => (res.status >= 400 && !String(res.headers.get('content-type')).startsWith('text/plain') ? 'Udup error is not text/plain' : res.status >= 400 && !res.text ? 'empty Udup error' : undefined),
  cello: (res, j) => (res.status >= 400 && !(isObj(j) && j.status === 'FAIL' && typeof j.code === 'number' && typeof j.error === 'string' && 'data' in j) ? 'not Cello {status:"FAIL",code,error,data}' : undefined),
  'connection-service': (res, j) => (res.status >= 400 && !(isObj(j) && typeof j.message === 'string' && typeof j.code === 'string') ? 'not {message, code}' : undefined),
  changeserver: (res, j) => (res.status >= 400 && !(isObj(j) && typeof j.code === 'string' && typeof j.error === 'string') ? 'not changeserver {code, error, description}' : undefined),
  'fate-flow': (res, j) => (!(isObj(j) && typeof j.retcode === 'number' && typeof j.retmsg === 'string') ? 'not FATE {retcode, retmsg}' : res.status < 400 && res.status !== 200 ? `FATE answered ${res.status}` : undefined),
};

interface Dialect { name: string; routes: RestRoute[]; extraPaths: string[]; keys: string[] }

const openApi = (path: string): RestRoute => ({ method: 'GET', path, input: 'query', summary: 'openapi', result: () => ({}) });

/** In the order the gateway mounts them: the first table with a matching path answers. */
const DIALECTS: Dialect[] = [
  { name: 'fate-flow', routes: [...fateFlowRoutes, openApi('/v1/fate-flow/openapi.json')], extraPaths: [], keys: ['job_id', 'component_name', 'role', 'party_id', 'namespace', 'table_name', 'file', 'output_path', 'job_dsl', 'job_runtime_conf', 'model', 'status', 'head', 'drop', 'delimiter', 'f_job_id', 'progress', 'create_time', 'metric_name', 'metric_namespace', '__staged_upload', 'stop_status'] },
  { name: 'connection-service', routes: [...connectionServiceRoutes, openApi('/connection-service/openapi.json')], extraPaths: [], keys: ['connectionString', 'environmentId', 'schema', 'sqlQuery'] },
  { name: 'cello', routes: [...celloRoutes, openApi('/v2/openapi.json')], extraPaths: [], keys: ['action', 'user_id', 'user', 'cluster_id', 'consensus_plugin', 'consensus_mode', 'size', 'allow_multiple', 'state'] },
  { name: 'udup', routes: [...udupRoutes, openApi('/v1/openapi.json')], extraPaths: [], keys: ['pretty', 'index', 'wait', 'prefix', 'Name', 'ID', 'Type', 'Tasks'] },
  { name: 'changeserver', routes: changeserverRoutes({ feed: 'fuzzfeed' }), extraPaths: [], keys: ['scope', 'selector', 'since', 'limit', 'block', 'snapshot'] },
];

const routeRegex = (path: string) => new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, '[^/]+')}/?$`, 'i');
const MATCHERS = DIALECTS.map((d) => ({ name: d.name, res: d.routes.map((r) => routeRegex(r.path)) }));

function dialectOf(path: string): string | undefined {
  return MATCHERS.find((m) => m.res.some((re) => re.test(path)))?.name;
}

/** Every leaf path of an example body, so a case can replace some of them with junk. */
function leafPaths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return v.length ? v.flatMap((x, i) => leafPaths(x, [...prefix, i])) : [prefix];
  if (isObj(v)) return Object.keys(v).length ? Object.entries(v).flatMap(([k, x]) => [[...prefix, k], ...leafPaths(x, [...prefix, k])]) : [prefix];
  return [prefix];
}

function setAt(root: unknown, path: (string | number)[], value: unknown, remove: boolean): unknown {
  if (path.length === 0) return remove ? undefined : value;
  const copy: any = Array.isArray(root) ? [...root] : isObj(root) ? { ...root } : {};
  const [head, ...rest] = path;
  if (rest.length === 0 && remove) { if (Array.isArray(copy)) copy.splice(Number(head), 1); else delete copy[head!]; return copy; }
  copy[head!] = setAt(copy[head!], rest, value, remove);
  return copy;
}

interface Case {
  route: RestRoute;
  method: string;
  params: string[];
  query: [string, string][];
  rawQuery: string;
  body: { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'text'; text: string } | { kind: 'bytes'; bytes: Uint8Array };
  contentType?: string;
  accept?: string;
  auth?: string;
}

/** Query values and path parameters stay under Node's 16 KiB request-line limit (past it Node answers 431 before any route). */
const shortJunk = junkString.map((s) => s.slice(0, 1500));

const paramValue = fc.oneof(
  { weight: 4, arbitrary: shortJunk.filter((s) => s !== '.' && s !== '..').map((s) => { try { return encodeURIComponent(s) || 'x'; } catch { return 'x'; } }) },
  { weight: 2, arbitrary: fc.constantFrom('1', '0', '-1', '99999999999999999999', 'fuzzfeed', 'submit', 'exam-7-9', '00000000-0000-0000-0000-000000000000') },
  { weight: 1, arbitrary: fc.constantFrom('%zz', '%', '%00', '%E0%A4%A', '%C0%AF', '%2F', '%2e%2e', 'a%20b', '%FF%FE', ';a=b', 'x:y') },
);

function bodyArb(d: Dialect, ports: number[]): fc.Arbitrary<Case['body']> {
  const examples = d.routes.map((r) => r.requestExample).filter((e) => e !== undefined);
  const mutated = (examples.length ? fc.constantFrom(...examples) : fc.constant({})).chain((ex) => {
    const paths = leafPaths(ex).filter((p) => p.length > 0);
    return fc.tuple(fc.constant(ex), fc.subarray(paths, { maxLength: Math.min(4, paths.length) }), fc.array(junkJson, { minLength: 4, maxLength: 4 }), fc.boolean(), fc.dictionary(fc.constantFrom(...d.keys, '__proto__', 'constructor', ''), junkJson, { maxKeys: 3 }));
  }).map(([ex, paths, values, remove, extra]) => {
    let v: unknown = ex;
    paths.forEach((p, i) => { v = setAt(v, p, values[i], remove && i === 0); });
    return sanitize(isObj(v) ? { ...v, ...extra } : v, ports);
  });
  const form = fc.array(fc.tuple(fc.constantFrom(...d.keys, 'x', ''), junkString), { maxLength: 6 })
    .map((pairs) => sanitizeFlat(pairs, ports).map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&'));
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 6, arbitrary: mutated.map((value) => ({ kind: 'json' as const, value })) },
    { weight: 2, arbitrary: junkJson.map((value) => ({ kind: 'json' as const, value: sanitize(value, ports) })) },
    { weight: 2, arbitrary: form.map((text) => ({ kind: 'text' as const, text })) },
    { weight: 2, arbitrary: fc.oneof(fc.constantFrom('{', '{"a":}', '[1,', 'nul', '{"a":1}}', '\u0000', '\uFEFF{}', '{"__proto__":{"x":1}}', 'a=%zz&b=%E0%A4%A', '&&&==&', 'a=1&a=2&a[]=3', '"just a string"', '1e99999', '{"a":' + '['.repeat(5000)), fc.string({ maxLength: 60 })).map((text) => ({ kind: 'text' as const, text })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
    // Over the 1 MiB limit (413 in the dialect); FATE-Flow takes 16 MiB and would store it, so not there.
    ...(d.name === 'fate-flow' ? [] : [{ weight: 1, arbitrary: fc.constant({ kind: 'text' as const, text: `{"a":"${'x'.repeat(1100 * 1024)}"}` }) }]),
  );
}

function caseArb(d: Dialect, ports: number[]): fc.Arbitrary<Case> {
  return fc.record({
    route: fc.constantFrom(...d.routes),
    methodPick: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') }),
    params: fc.array(paramValue, { minLength: 3, maxLength: 3 }),
    query: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...d.keys), fc.constantFrom('a[b]', 'a[]', '__proto__', 'constructor[prototype][x]', ''), fc.string({ maxLength: 8 })), shortJunk), { maxLength: 6 }),
    rawQuery: fc.constantFrom('', '', '', '?', '&&', '=', '%zz=1', 'a[b][c]=1', '__proto__[x]=1', 'action=apply?user_id=x?size=4', 'pretty', 'scope', 'a=%E0%A4%A'),
    body: bodyArb(d, ports),
    contentType: fc.constantFrom(undefined, 'application/json', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'garbage', 'application/x-www-form-urlencoded; charset=utf-16'),
    accept: fc.constantFrom(undefined, '*/*', 'application/json', 'application/transicator+protobuf', 'text/html', 'application/*;q=0', 'garbage;;q=x', 'application/json;q=abc'),
    auth: fc.constantFrom(undefined, undefined, 'Bearer ', 'Bearer junk', 'Basic Zm9vOmJhcg==', 'bearer trb_x'),
  }).map(({ methodPick, ...c }) => {
    const own = methodsOf(c.route);
    return { ...c, method: methodPick ?? own[c.params[0]!.length % own.length]!, query: sanitizeFlat(c.query, ports) };
  });
}

/** Keep long polls short: a valid `block`/`wait` becomes at most a second. */
function tameLongPolls(query: [string, string][]): [string, string][] {
  const out = query.map(([k, v]): [string, string] => {
    if (k === 'block' && /^\s*-?\d+\s*$/.test(v)) return [k, String(Math.min(Math.abs(Number(v)) || 0, 1))];
    if (k === 'wait') return [k, /\d/.test(v) ? '20ms' : v];
    return [k, v];
  });
  if (out.some(([k]) => k === 'index') && !out.some(([k]) => k === 'wait')) out.push(['wait', '20ms']);
  return out;
}

function buildRequest(base: string, c: Case): { url: string; init: RequestInit } {
  let i = 0;
  const path = c.route.path.replace(/:(\w+)/g, () => c.params[i++ % c.params.length]!);
  const qs = tameLongPolls(c.query).map(([k, v]) => `${encode(k)}=${encode(v)}`);
  if (c.rawQuery) qs.push(c.rawQuery);
  const headers: Record<string, string> = {};
  if (c.contentType) headers['content-type'] = c.contentType;
  if (c.accept) headers.accept = c.accept;
  if (c.auth) headers.authorization = c.auth;
  let body: string | Uint8Array | undefined;
  if (!['GET', 'HEAD'].includes(c.method)) {
    if (c.body.kind === 'json') body = JSON.stringify(c.body.value) ?? 'null';
    else if (c.body.kind === 'text') body = c.body.text;
    else if (c.body.kind === 'bytes') body = c.body.bytes;
  }
  return { url: `${base}${path}${qs.length ? `?${qs.join('&')}` : ''}`, init: { method: c.method, headers, body: body as RequestInit['body'], signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) } };
}

function describeCase(url: string, init: RequestInit): string {
  const b = init.body;
  const body = typeof b === 'string' ? truncate(b, 300) : b ? `<${(b as Uint8Array).length} bytes>` : '';
  return `${init.method} ${truncate(url, 300)} ${JSON.stringify(init.headers)} ${body}`;
}

async function runCase(base: string, c: Case): Promise<CaseFailure | undefined> {
  const { url, init } = buildRequest(base, c);
  const request = describeCase(url, init);
  let res: Response;
  try {
    res = await fetchOnce(url, init);
  } catch (err) {
    return { reason: `no answer: ${(err as Error).message}`, request, status: 0, body: '' };
  }
  const text = await res.text();
  const r: FuzzResponse = { status: res.status, headers: res.headers, text };
  const pathOnly = new URL(url).pathname;
  const fail = (reason: string) => ({ reason, request, status: res.status, body: truncate(text) });
  const common = commonProblems(r);
  if (common) return fail(common);
  if (c.method === 'HEAD' || res.status === 431 || (pathOnly.endsWith('/openapi.json') && res.status === 200)) return undefined;
  // The gateway's landing page and docs (GET / and /docs/<name>.md): a fuzzed path such as /x/%2e%2e resolves to /.
  if ((pathOnly === '/' || /^\/docs\/[a-z0-9-]+\.md$/i.test(pathOnly)) && (res.status === 200 || res.status === 404) && c.method === 'GET') return undefined;
  const dialect = dialectOf(pathOnly);
  if (!dialect) return res.status === 404 ? undefined : fail(`path matches no route yet answered ${res.status}`);
  let json: unknown;
  if (String(res.headers.get('content-type')).includes('json')) {
    try { json = JSON.parse(text); } catch { return fail('invalid JSON in a JSON answer'); }
  }
  const shape = SHAPES[dialect]!(r, json);
  return shape ? fail(`${dialect}: ${shape}`) : undefined;
}

describe('REST fuzzing: every route of the five dialects', () => {
  let gw: TestGateway;
  let ports: number[];
  let total = 0;
  let testsRun = 0;
  const dialects = DIALECTS.filter((x) => !process.env.FUZZ_ONLY || process.env.FUZZ_ONLY.split(',').includes(x.name));
  beforeAll(async () => {
    gw = await startTestGateway({ changeserverFeed: 'fuzzfeed', rateLimitPerSecond: 0 } as never, { worker: false });
    ports = [inject('pgUrl'), inject('mariaUrl')].map((u) => Number(new URL(u).port));
  });
  afterAll(async () => {
    console.log(`REST fuzz: ${total} cases over ${dialects.reduce((a, d) => a + d.routes.length, 0)} routes of ${dialects.length} dialects; slowest answer ${answerStats.slowestMs} ms (${answerStats.slowest})`);
    reportCases(inject('fuzzCountDir'), { file: 'rest', cases: total, testsRun, testsDeclared: DIALECTS.length, slowestMs: answerStats.slowestMs });
    await gw?.close();
  });

  for (const d of dialects) {
    it(`${d.name}: ${d.routes.length} routes`, async () => {
      testsRun++;
      const failures: CaseFailure[] = [];
      await fc.assert(fc.asyncProperty(fc.array(caseArb(d, ports), { minLength: BATCH, maxLength: BATCH }), async (cases) => {
        const results = await Promise.all(cases.map((c) => runCase(gw.url, c)));
        total += cases.length;
        const bad = results.filter((r): r is CaseFailure => !!r);
        const health = await fetchOnce(`${gw.url}/health`);
        if (health.status !== 200) bad.push({ reason: '/health no longer answers 200', request: '', status: health.status, body: await health.text() });
        if (bad.length) { failures.push(...bad); return false; }
        return true;
      }), { numRuns: RUNS, endOnFailure: true, seed: fuzzSeed() }).catch((err) => { if (!failures.length) throw err; console.log(String((err as Error).message).split('\n').slice(0, 3).join('\n')); });
      expect(failures.slice(0, 5), JSON.stringify(failures.slice(0, 5), null, 2)).toEqual([]);
    }, 600_000);
  }
});
