/**
 * Cello v2 wire vocabulary: parameter names, messages, the envelope, and the
 * translation between Cello's snake_case cluster objects and the GraphQL
 * `Cluster`. Translation only; the cluster service decides everything.
 */
import { ErrorCode } from '../../errors.ts';
import type { GraphQLErrorShape } from '../executor.ts';
import { RestError, type RestRequest, type RestResponse } from '../rest-route.ts';

/** Cello's request parameters. */
export const CelloParam = {
  Action: 'action',
  UserId: 'user_id',
  User: 'user',
  ClusterId: 'cluster_id',
  ConsensusPlugin: 'consensus_plugin',
  ConsensusMode: 'consensus_mode',
  Size: 'size',
  AllowMultiple: 'allow_multiple',
  State: 'state',
} as const;

export enum CelloAction {
  Apply = 'apply',
  Release = 'release',
  Start = 'start',
  Stop = 'stop',
  Restart = 'restart',
}

/** Cello's own error texts (resources/cluster_api.py). */
export const CelloMessage = {
  UnknownAction: 'Unknown action type',
  ApplyWithoutUser: 'cluster_apply without user_id',
  NoClusterId: 'No cluster_id is given',
  ReleaseWithoutId: 'cluster_release without id',
  InvalidPlugin: 'Invalid consensus_plugin',
  InvalidMode: 'Invalid consensus_mode',
  InvalidSize: 'Invalid cluster_size',
  InvalidAllowMultiple: 'Invalid allow_multiple',
  clusterNotFound: (id: string) => `cluster not found with id=${id}`,
} as const;

/** Codes in the envelope body (common/response.py). */
export enum CelloCode {
  Ok = 200,
  BadRequest = 400,
  Unauthorized = 401,
  Forbidden = 403,
  NotFound = 404,
  MethodNotAllowed = 405,
  Conflict = 409,
  Internal = 500,
}

/** Success: HTTP 200; Flask's jsonify sorted the keys. */
export function ok(data: unknown = ''): RestResponse {
  return { status: 200, json: { code: CelloCode.Ok, data, error: '', status: 'OK' } };
}

/** Failure: always HTTP 400 (Cello's make_fail_resp), the real reason in `code`; internal faults stay HTTP 500. */
export function fail(error: string, code: number = CelloCode.BadRequest, data: unknown = ''): RestResponse {
  return { status: code === CelloCode.Internal ? 500 : 400, json: { code, data, error, status: 'FAIL' } };
}

const CODE_BY_ERROR: Record<string, CelloCode> = {
  [ErrorCode.NotFound]: CelloCode.NotFound,
  [ErrorCode.Forbidden]: CelloCode.Forbidden,
  [ErrorCode.Unauthenticated]: CelloCode.Unauthorized,
  [ErrorCode.Internal]: CelloCode.Internal,
};

/** GraphQL errors in Cello's words; an unknown cluster is code 404 "cluster not found with id=...". */
export function graphqlFail(errors: GraphQLErrorShape[], req: RestRequest): RestResponse {
  const first = errors[0]!;
  const code = CODE_BY_ERROR[String(first.extensions?.code ?? '')] ?? CelloCode.BadRequest;
  if (code === CelloCode.NotFound) return fail(CelloMessage.clusterNotFound(clusterRef(req) ?? ''), code);
  if (code === CelloCode.Internal) return fail('internal error', code);
  return fail(errors.map((e) => e.message).join('; '), code);
}

// ---------------------------------------------------------------- parameters

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * The document writes `?action=apply?user_id=xxxx` (a second `?` for `&`),
 * and callers copied it: a query value holding `?k=v` pairs is split into
 * its own value plus those parameters (explicit parameters win).
 */
export function unquirkQuery(query: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  const extra: Record<string, string> = {};
  for (const [k, raw] of Object.entries(query)) {
    const v = Array.isArray(raw) ? raw[0] ?? '' : raw;
    const q = v.indexOf('?');
    if (q >= 0 && v.slice(q + 1).includes('=')) {
      out[k] = v.slice(0, q);
      for (const [ek, ev] of new URLSearchParams(v.slice(q + 1).replace(/\?/g, '&'))) extra[ek] ??= ev;
    } else {
      out[k] = v;
    }
  }
  for (const [k, v] of Object.entries(extra)) out[k] ??= v;
  return out;
}

const paramsCache = new WeakMap<RestRequest, Record<string, unknown>>();

/** Cello's request_get: the query string first, then the form or JSON body. */
export function params(req: RestRequest): Record<string, unknown> {
  let p = paramsCache.get(req);
  if (!p) {
    const body = isObject(req.body) ? req.body : {};
    const flat: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) flat[k] = Array.isArray(v) ? v[0] : v;
    p = { ...flat, ...unquirkQuery(req.query) };
    paramsCache.set(req, p);
  }
  return p;
}

/** A string parameter; numbers are accepted as their text; absent or empty = undefined. */
export function str(req: RestRequest, name: string, invalid?: string): string | undefined {
  const v = params(req)[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new RestError(400, invalid ?? `Invalid ${name}`);
}

/** Like str, but keeps '' (Cello's `user: ""` means "free clusters"). */
export function strOrEmpty(req: RestRequest, name: string): string | undefined {
  const v = params(req)[name];
  if (v === '') return '';
  return str(req, name);
}

export function int(req: RestRequest, name: string, invalid: string): number | undefined {
  const v = params(req)[name];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new RestError(400, invalid);
  return n;
}

/** Python-style booleans: True/False as JSON booleans or text (Cello's doc writes `allow_multiple:False`). */
export function bool(req: RestRequest, name: string, invalid: string): boolean {
  const v = params(req)[name];
  if (v === undefined || v === null || v === '' || v === false || v === 0) return false;
  if (v === true || v === 1) return true;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off', 'none'].includes(s)) return false;
  }
  throw new RestError(400, invalid);
}

/** The cluster a request names (for "not found" texts). */
export function clusterRef(req: RestRequest): string | undefined {
  if (req.params.id) return req.params.id;
  try { return str(req, CelloParam.ClusterId); } catch { return undefined; }
}

// ---------------------------------------------------------------- clusters

export const CLUSTER_FIELDS = `id name size consensusPlugin consensusMode status health userId applyTs releaseTs
  releaseStatus releaseProgress releaseMessage queue apiUrl daemonUrl workers createdAt`;

export interface GqlCluster {
  id: string;
  name: string;
  size: number;
  consensusPlugin: string;
  consensusMode: string;
  status: 'RUNNING' | 'STOPPED';
  health: string;
  userId: string | null;
  applyTs: string | null;
  releaseTs: string | null;
  releaseStatus: string;
  releaseProgress: number;
  releaseMessage: string;
  queue: string;
  apiUrl: string;
  daemonUrl: string;
  workers: string[];
  createdAt: string;
}

/** What apply answers (the document's example, key for key). */
export function appliedCluster(c: GqlCluster): Record<string, unknown> {
  return {
    api_url: c.apiUrl, consensus_mode: c.consensusMode, consensus_plugin: c.consensusPlugin, daemon_url: c.daemonUrl,
    id: c.id, name: c.name, size: c.size, user_id: c.userId ?? '',
  };
}

/** A cluster as GET /v2/cluster/{id} and /v2/clusters show it (Cello's serializer keys that still mean something; '' for unset). */
export function celloCluster(c: GqlCluster): Record<string, unknown> {
  return {
    ...appliedCluster(c),
    status: c.status.toLowerCase(),
    health: c.health,
    create_ts: c.createdAt,
    apply_ts: c.applyTs ?? '',
    release_ts: c.releaseTs ?? '',
    release_status: c.releaseStatus.toLowerCase(),
    release_progress: c.releaseProgress,
    worker_api: c.daemonUrl,
    queue: c.queue,
    workers: c.workers,
  };
}
