/**
 * The declarative route table every REST compat module uses.
 *
 * A module is data: a list of `RestRoute`s (method, path, how input is read,
 * the GraphQL operation, how variables are built, how the answer and errors
 * are shaped into the legacy envelope) and one `RestDialect` (how that API
 * words its own errors). `mountRoutes` turns the table into Express handlers
 * that run the operation through the `GraphQLExecutor`; `openApiFor` turns
 * the same table into an OpenAPI 3.1 document.
 *
 * Request flow for one route:
 *
 *   read input (json | form | query | any) --malformed--> dialect.error(400)
 *   lookup? (a read whose data the next steps may use)
 *   operation(req, lookup) --undefined--> result(undefined, req, lookup)
 *   execute --GraphQL errors--> route.error ?? dialect.graphqlError
 *   longPoll? re-execute every pollIntervalMs until ready() or the wait ends
 *   result(data, req, lookup) --> { status, headers, json | text | bytes }
 *
 * A `RestError` thrown by any route hook is answered through
 * `dialect.error`; anything else is a 500 in the dialect's words and is
 * reported to `onInternalError`. A known path with a method it does not
 * serve answers 405 through `dialect.error`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { GraphQLErrorShape, GraphQLExecutor } from './executor.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/**
 * Where a route's input comes from:
 * - `json`: the body parsed as JSON whatever its Content-Type (legacy callers
 *   often send JSON with curl's default form type); empty body = undefined.
 * - `form`: an application/x-www-form-urlencoded body.
 * - `query`: the query string only; the body is not read.
 * - `any`: query string, then a JSON or form body (by Content-Type, or by the
 *   first character when the type says neither) merged over it.
 */
export type InputKind = 'json' | 'form' | 'query' | 'any';

export type QueryValues = Record<string, string | string[]>;

/** What route hooks see of a request. */
export interface RestRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** The original URL, query string included (for quirky legacy syntax). */
  url: string;
  params: Record<string, string>;
  query: QueryValues;
  /** Parsed body: a JSON value, a form record, or undefined. */
  body: unknown;
  /** The merged input for the route's InputKind (an object; `{}` when absent). */
  input: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  authorization?: string;
  /** The local address the request arrived on, e.g. 127.0.0.1:8190. */
  local: { address: string; port: number };
}

/** One answer. Exactly one of `json`, `text`, `bytes` is used, in that order; none = empty body. */
export interface RestResponse {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string;
  bytes?: Uint8Array;
  /** Defaults: application/json, text/plain; charset=utf-8, application/octet-stream. */
  contentType?: string;
}

/** Thrown by route hooks to answer an error in the module's dialect. */
export class RestError extends Error {
  override readonly name = 'RestError';
  constructor(
    readonly status: number,
    message: string,
    /** The legacy API's own error code, if it has one. */
    readonly code?: string | number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ParamDoc {
  name: string;
  in: 'path' | 'query' | 'header';
  description?: string;
  required?: boolean;
  /** JSON Schema type; default string. */
  type?: 'string' | 'integer' | 'number' | 'boolean';
  example?: unknown;
}

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1). */
export type JsonSchema = Record<string, unknown>;

/** What a dialect's `openapi.json` route answers. */
export const OPENAPI_DOCUMENT_SCHEMA: JsonSchema = {
  type: 'object', required: ['openapi', 'info', 'servers', 'paths'],
  properties: { openapi: { type: 'string', pattern: '^3\\.1\\.' }, info: { type: 'object' }, servers: { type: 'array', minItems: 1 }, paths: { type: 'object' } },
};

export interface ResponseDoc {
  status: number;
  description: string;
  example?: unknown;
  /** Default application/json, or text/plain when the example is a string and `json` is not set. */
  contentType?: string;
  headers?: Record<string, string>;
  /** The body's schema; a response without one has no body. */
  schema?: JsonSchema;
  /** Further media types the same status answers in (content negotiation), e.g. protobuf beside JSON. */
  alternatives?: { contentType: string; schema: JsonSchema }[];
}

export interface LongPoll<TData> {
  /** How long to wait for a change, in ms; 0 = answer at once. May throw RestError. */
  waitMs(req: RestRequest): number;
  /** Whether `data` is worth answering now; `initial` is the first answer. */
  ready(data: TData, req: RestRequest, initial: TData): boolean;
}

export interface RestRoute<TData = any, TLookup = any> {
  method: HttpMethod | readonly HttpMethod[];
  /** Express path with `:params`. */
  path: string;
  input: InputKind;
  /** OpenAPI documentation. */
  summary: string;
  description?: string;
  tags?: string[];
  params?: ParamDoc[];
  requestExample?: unknown;
  responses?: ResponseDoc[];
  /** A read run first; its data reaches `operation`, `variables` and `result`. `variables` returning null skips it. */
  lookup?: { operation: string; variables(req: RestRequest): Record<string, unknown> | null };
  /** GraphQL text, or a choice made from the lookup; undefined (or a function returning it) = no operation. */
  operation?: string | ((req: RestRequest, lookup: TLookup | undefined) => string | undefined);
  variables?(req: RestRequest, lookup: TLookup | undefined): Record<string, unknown>;
  result(data: TData, req: RestRequest, lookup: TLookup | undefined): RestResponse;
  /** GraphQL errors; default `dialect.graphqlError`. */
  error?(errors: GraphQLErrorShape[], req: RestRequest): RestResponse;
  longPoll?: LongPoll<TData>;
}

/** Infers a route's data types; the table itself is `RestRoute[]`. */
export function defineRoute<TData = any, TLookup = any>(route: RestRoute<TData, TLookup>): RestRoute {
  return route as RestRoute;
}

/** How one legacy API words its errors and serializes its JSON. */
export interface RestDialect {
  /** Errors the machinery raises (malformed body, 405, 413, 500) and RestErrors from hooks. `req` is absent before input is read. */
  error(err: RestError, req: RestRequest | undefined): RestResponse;
  /** GraphQL errors of routes without their own `error`. */
  graphqlError(errors: GraphQLErrorShape[], req: RestRequest): RestResponse;
  /** JSON serialization (pretty printing, field order). Default JSON.stringify. */
  serialize?(value: unknown, req: RestRequest | undefined): string;
}

export interface MountOptions {
  dialect: RestDialect;
  /** Request body limit in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Interval between re-executions of a long-poll route. Default 250 ms. */
  pollIntervalMs?: number;
  /** Headers set on every answer. Default none. */
  headers?: Record<string, string>;
  /** Told about unexpected failures (answered 500). Default: ignored. */
  onInternalError?(err: unknown, req: RestRequest | undefined): void;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const ALL_METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export const methodsOf = (r: RestRoute): readonly HttpMethod[] => (typeof r.method === 'string' ? [r.method] : r.method);

function asQueryValues(q: unknown): QueryValues {
  const out: QueryValues = {};
  if (!q || typeof q !== 'object') return out;
  for (const [k, v] of Object.entries(q as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.map(String);
  }
  return out;
}

function parseForm(text: string): QueryValues {
  const out: QueryValues = {};
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RestError(400, `malformed JSON body: ${(err as Error).message}`, undefined, { cause: err });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

function readRaw(req: Request, res: Response, limit: number): Promise<Buffer | undefined> {
  const parser = express.raw({ type: () => true, limit });
  return new Promise((resolve, reject) => {
    parser(req, res, (err?: unknown) => {
      if (!err) { resolve(Buffer.isBuffer(req.body) ? req.body : undefined); return; }
      const e = err as Error & { type?: string; status?: number };
      if (e.type === 'entity.too.large') reject(new RestError(413, `request body exceeds ${limit} bytes`, undefined, { cause: e }));
      else if (e.status && e.status < 500) reject(new RestError(e.status, `malformed request body: ${e.message}`, undefined, { cause: e }));
      else reject(e);
    });
  });
}

async function readInput(route: RestRoute, req: Request, res: Response, limit: number): Promise<{ body: unknown; input: Record<string, unknown> }> {
  const query = asQueryValues(req.query);
  if (route.input === 'query' || !BODY_METHODS.has(req.method)) return { body: undefined, input: { ...query } };
  const raw = await readRaw(req, res, limit);
  const text = raw?.toString('utf8') ?? '';
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  let body: unknown;
  if (route.input === 'json') body = parseJson(text);
  else if (route.input === 'form') body = text ? parseForm(text) : undefined;
  else if (type.includes('json') || (!type.includes('x-www-form-urlencoded') && /^\s*[[{]/.test(text))) body = parseJson(text);
  else body = text ? parseForm(text) : undefined;
  const bodyObject = isObject(body) ? body : {};
  return { body, input: route.input === 'any' ? { ...query, ...bodyObject } : bodyObject };
}

/** The local address an Express request arrived on, IPv6 in brackets. */
export function localOf(req: Request): RestRequest['local'] {
  const addr = (req.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  return { address: addr.includes(':') ? `[${addr}]` : addr, port: req.socket.localPort ?? 0 };
}

function toRestRequest(req: Request, parsed: { body: unknown; input: Record<string, unknown> }): RestRequest {
  return {
    method: req.method,
    path: req.path,
    url: req.originalUrl,
    params: { ...(req.params as Record<string, string>) },
    query: asQueryValues(req.query),
    body: parsed.body,
    input: parsed.input,
    headers: req.headers,
    authorization: req.headers.authorization,
    local: localOf(req),
  };
}

function send(res: Response, out: RestResponse, opts: MountOptions, req: RestRequest | undefined): void {
  if (res.headersSent || res.writableEnded) return;
  res.status(out.status ?? 200);
  for (const [k, v] of Object.entries({ ...opts.headers, ...out.headers })) res.setHeader(k, v);
  let payload: Buffer | undefined;
  let type = out.contentType;
  if ('json' in out) {
    payload = Buffer.from(opts.dialect.serialize ? opts.dialect.serialize(out.json, req) : JSON.stringify(out.json) ?? 'null');
    type ??= 'application/json';
  } else if (out.text !== undefined) {
    payload = Buffer.from(out.text);
    type ??= 'text/plain; charset=utf-8';
  } else if (out.bytes !== undefined) {
    payload = Buffer.from(out.bytes);
    type ??= 'application/octet-stream';
  }
  if (payload === undefined) { res.end(); return; }
  res.setHeader('Content-Type', type!);
  res.setHeader('Content-Length', String(payload.length));
  res.end(res.req.method === 'HEAD' ? undefined : payload);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type Outcome = { data: unknown } | { errors: GraphQLErrorShape[] };

async function execute(executor: GraphQLExecutor, query: string, variables: Record<string, unknown> | undefined, rr: RestRequest): Promise<Outcome> {
  const r = await executor({ query, variables, authorization: rr.authorization });
  if (r.errors?.length) return { errors: r.errors };
  return { data: r.data ?? null };
}

async function handle(route: RestRoute, req: Request, res: Response, executor: GraphQLExecutor, opts: MountOptions): Promise<void> {
  let rr: RestRequest | undefined;
  try {
    const limited = await executor.rateLimit?.(req.headers.authorization, req.socket.remoteAddress);
    if (limited) {
      const out = opts.dialect.error(new RestError(429, limited.message, 'RATE_LIMITED'), undefined);
      send(res, { ...out, status: 429, headers: { 'Retry-After': String(Math.ceil(limited.retryAfterMs / 1000)), ...out.headers } }, opts, undefined);
      return;
    }
    rr = toRestRequest(req, await readInput(route, req, res, opts.maxBodyBytes ?? 1024 * 1024));
    const r = rr;
    const graphqlError = (errors: GraphQLErrorShape[]) => (route.error ?? opts.dialect.graphqlError)(errors, r);
    const waitMs = route.longPoll?.waitMs(r) ?? 0;

    let lookup: unknown;
    const lookupVars = route.lookup?.variables(r);
    if (route.lookup && lookupVars) {
      const out = await execute(executor, route.lookup.operation, lookupVars, r);
      if ('errors' in out) { send(res, graphqlError(out.errors), opts, r); return; }
      lookup = out.data;
    }
    const query = typeof route.operation === 'function' ? route.operation(r, lookup) : route.operation;
    if (query === undefined) { send(res, route.result(undefined, r, lookup), opts, r); return; }
    const variables = route.variables?.(r, lookup);
    let out = await execute(executor, query, variables, r);
    if ('errors' in out) { send(res, graphqlError(out.errors), opts, r); return; }

    if (route.longPoll && waitMs > 0 && !route.longPoll.ready(out.data, r, out.data)) {
      const initial = out.data;
      const deadline = Date.now() + waitMs;
      let gone = false;
      res.once('close', () => { gone = true; });
      while (!gone && Date.now() < deadline) {
        await sleep(Math.min(opts.pollIntervalMs ?? 250, deadline - Date.now()));
        if (gone) return;
        out = await execute(executor, query, variables, r);
        if ('errors' in out) { send(res, graphqlError(out.errors), opts, r); return; }
        if (route.longPoll.ready(out.data, r, initial)) break;
      }
      if (gone) return;
    }
    send(res, route.result(out.data, r, lookup), opts, r);
  } catch (err) {
    if (err instanceof RestError) { send(res, opts.dialect.error(err, rr), opts, rr); return; }
    opts.onInternalError?.(err, rr);
    send(res, opts.dialect.error(new RestError(500, 'internal error', undefined, { cause: err }), rr), opts, rr);
  }
}

/** Mount a route table on `router`; a known path answers other methods with 405 in the dialect. */
export function mountRoutes(router: Router, routes: readonly RestRoute[], executor: GraphQLExecutor, opts: MountOptions): Router {
  const byPath = new Map<string, RestRoute[]>();
  for (const r of routes) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);
  for (const [path, group] of byPath) {
    const served = new Set<string>();
    const chain = router.route(path);
    for (const route of group) {
      for (const m of methodsOf(route)) {
        served.add(m);
        const fn = (req: Request, res: Response) => { void handle(route, req, res, executor, opts); };
        chain[m.toLowerCase() as Lowercase<HttpMethod>](fn);
      }
    }
    if (served.has('GET')) served.add('HEAD');
    chain.all((req: Request, res: Response) => {
      const allow = ALL_METHODS.filter((m) => served.has(m)).join(', ');
      const out = opts.dialect.error(new RestError(405, `method ${req.method} not allowed on ${path}`), undefined);
      send(res, { ...out, headers: { Allow: allow, ...out.headers } }, opts, undefined);
    });
  }
  // Errors Express raises while matching these routes (a path parameter that is no valid
  // percent-encoding, e.g. /v1/job/%C0%AF) answer in the dialect, not in the gateway's GraphQL shape.
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) { next(err); return; }
    const e = err as { status?: number; statusCode?: number; message?: string };
    const status = e.status ?? e.statusCode;
    const rest = status && status >= 400 && status < 500
      ? new RestError(status, `malformed request: ${e.message ?? 'bad request'}`, undefined, { cause: err })
      : new RestError(500, 'internal error', undefined, { cause: err });
    if (rest.status >= 500) opts.onInternalError?.(err, undefined);
    send(res, opts.dialect.error(rest, undefined), opts, undefined);
  });
  return router;
}

/** One entry of an OpenAPI document's `servers`. */
export interface ServerDoc {
  url: string;
  description?: string;
}

/**
 * The `servers` a dialect's OpenAPI document lists, decided when it is
 * served: the listeners that really answer its routes (ports are known only
 * once they listen, and the legacy ports are off by default).
 */
export type OpenApiServers = (req: Pick<RestRequest, 'headers' | 'local'>) => ServerDoc[];

/** Default `servers`: the address the document was fetched from (its Host header). */
export const requestServers = (basePath = ''): OpenApiServers => (req) => [{
  url: `http://${req.headers.host ?? `${req.local.address}:${req.local.port}`}${basePath}`,
  description: 'The address this document was fetched from',
}];

/** `doc` with its `servers` replaced, written before `paths`. */
export function withServers(doc: Record<string, unknown>, servers: ServerDoc[]): Record<string, unknown> {
  const { paths, servers: _replaced, ...head } = doc;
  return { ...head, servers, paths };
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
  servers?: ServerDoc[];
  /**
   * Answers any route of the dialect can give besides its own (errors of the
   * machinery and of GraphQL: malformed input, auth, rate limit, internal);
   * a route's own entry for a status wins. Default none.
   */
  commonResponses?(route: RestRoute, method: HttpMethod): ResponseDoc[];
}

const openApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
const pathParams = (p: string) => [...p.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);

function operationId(method: string, path: string): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1));
  return method.toLowerCase() + words.join('');
}

function mediaFor(r: ResponseDoc): Record<string, unknown> {
  const type = r.contentType ?? (typeof r.example === 'string' ? 'text/plain' : 'application/json');
  const out: Record<string, unknown> = { [type]: { schema: r.schema ?? {}, ...(r.example !== undefined ? { example: r.example } : {}) } };
  for (const alt of r.alternatives ?? []) out[alt.contentType] = { schema: alt.schema };
  return out;
}

function responseObject(r: ResponseDoc): Record<string, unknown> {
  return {
    description: r.description,
    ...(r.headers ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) } : {}),
    ...(r.schema || r.example !== undefined || r.contentType ? { content: mediaFor(r) } : {}),
  };
}

/** An OpenAPI 3.1 document describing a route table. */
export function openApiFor(routes: readonly RestRoute[], info: OpenApiInfo): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const key = openApiPath(route.path);
    const item = (paths[key] ??= {});
    const declared = route.params ?? [];
    const parameters = [
      ...pathParams(route.path).filter((n) => !declared.some((d) => d.in === 'path' && d.name === n))
        .map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      ...declared.map((d) => ({
        name: d.name, in: d.in, required: d.in === 'path' ? true : d.required ?? false,
        ...(d.description ? { description: d.description } : {}),
        schema: { type: d.type ?? 'string' }, ...(d.example !== undefined ? { example: d.example } : {}),
      })),
    ];
    for (const m of methodsOf(route)) {
      const own = route.responses ?? [{ status: 200, description: 'OK' }];
      const common = (info.commonResponses?.(route, m) ?? []).filter((c) => !own.some((r) => r.status === c.status));
      const responses: Record<string, unknown> = {};
      for (const r of [...own, ...common].sort((a, b) => a.status - b.status)) responses[String(r.status)] = responseObject(r);
      const takesBody = BODY_METHODS.has(m) && route.input !== 'query';
      const content: Record<string, unknown> = {};
      if (takesBody && (route.input === 'json' || route.input === 'any')) content['application/json'] = route.requestExample === undefined ? { schema: {} } : { example: route.requestExample };
      if (takesBody && (route.input === 'form' || route.input === 'any')) content['application/x-www-form-urlencoded'] = route.requestExample === undefined ? { schema: {} } : { example: route.requestExample };
      item[m.toLowerCase()] = {
        operationId: operationId(m, route.path),
        summary: route.summary,
        ...(route.description ? { description: route.description } : {}),
        ...(route.tags ? { tags: route.tags } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(takesBody ? { requestBody: { required: false, content } } : {}),
        responses,
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: info.title, version: info.version, ...(info.description ? { description: info.description } : {}) },
    ...(info.servers ? { servers: info.servers } : {}),
    paths,
  };
}
