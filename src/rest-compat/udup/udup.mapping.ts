/**
 * Udup v1 vocabulary and translation: header and parameter names, the
 * status-code table, Udup job JSON -> GraphQL variables, and GraphQL data ->
 * Udup's job, job-stub, node and write-response shapes. Pure functions; no
 * I/O. Passwords never leave here except as "*".
 */
import { ErrorCode } from '../../errors.ts';
import type { GraphQLErrorShape } from '../executor.ts';
import { RestError, type RestRequest, type RestResponse } from '../rest-route.ts';
import { udupStatus } from './udup.dialect.ts';

export const UdupHeader = {
  Index: 'X-Udup-Index',
  KnownLeader: 'X-Udup-KnownLeader',
  LastContact: 'X-Udup-LastContact',
} as const;

export const UdupParam = { Pretty: 'pretty', Index: 'index', Wait: 'wait', Prefix: 'prefix' } as const;

export const UdupMessage = {
  InvalidMethod: 'Invalid method',
  NoName: "Job Name hasn't been provided",
  JobNotFound: 'job not found',
  NodeNotFound: 'node not found',
  InvalidWait: 'Invalid wait time',
  InvalidIndex: 'Invalid index',
  NoTasks: 'Missing job tasks',
} as const;

export enum UdupTaskType { Src = 'Src', Dest = 'Dest' }
export enum UdupJobType { Synchronous = 'synchronous', Migration = 'migration', Subscribe = 'subscribe' }

export const UDUP_REGION = 'global';
export const UDUP_DATACENTER = 'dc1';
export const MASKED_PASSWORD = '*';
/** Nomad/Consul cap on blocking queries, also the wait when only `index` is given. */
export const MAX_WAIT_MS = 5 * 60 * 1000;

/** GraphQL error code -> Udup HTTP status (Udup answered plain text with the status). */
const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCode.BadUserInput]: 400,
  [ErrorCode.ParameterInvalid]: 400,
  [ErrorCode.GraphqlValidationFailed]: 400,
  [ErrorCode.GraphqlParseFailed]: 400,
  [ErrorCode.ConnectionFailed]: 400,
  [ErrorCode.SourceNotReady]: 400,
  [ErrorCode.Unauthenticated]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.InvalidState]: 409,
  [ErrorCode.PayloadTooLarge]: 413,
  [ErrorCode.QueryTooComplex]: 400,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.Internal]: 500,
};

// ---------------------------------------------------------------- GraphQL data

export interface GqlConnection { kind: string; host: string; port: number; user: string }
export interface GqlTask { kind: string; name: string; status: string; nodeId?: string | null; nodeHint?: string | null; placement?: string | null }
export interface GqlJobSpec {
  tables?: { schemas?: { schema: string; tables?: string[]; where?: string }[]; ignore?: { schema: string; tables?: string[] }[] };
  parallelWorkers?: number; replChanBufferSize?: number; msgsLimit?: number; msgBytesLimit?: number; bytesLimit?: number;
  startPosition?: string; nodeHints?: Record<string, string>; paused?: boolean;
}
export interface GqlJob {
  id: string; index: number; name: string; type: string; status: string; statusReason?: string | null; error?: string | null;
  spec?: GqlJobSpec | null; createIndex: string; modifyIndex: string;
  tasks?: GqlTask[]; source?: GqlConnection | null; destination?: GqlConnection | null;
}
export interface GqlNode { id: string; role: string; host: string; pid: number; startedAt: string; lastSeen: string; cluster?: string | null; version: string }

// ---------------------------------------------------------------- responses

/** Udup numbers are uint64; ours arrive as decimal strings. */
export const indexNumber = (s: string | number | null | undefined): number => {
  const n = Number(s ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
};

export function metaHeaders(index: number, knownLeader: boolean): Record<string, string> {
  return { [UdupHeader.Index]: String(index), [UdupHeader.KnownLeader]: String(knownLeader), [UdupHeader.LastContact]: '0' };
}

/** A read: body plus the query-meta headers (this gateway is its own leader). */
export function readResponse(json: unknown, index: number): RestResponse {
  return { json, headers: metaHeaders(Math.max(index, 1), true) };
}

/** Udup's JobResponse for register, deregister, pause and resume, field order as the seed shows. */
export function writeResponse(index: number): RestResponse {
  return { json: { Index: index, KnownLeader: false, LastContact: 0, Success: true }, headers: metaHeaders(index, false) };
}

export function plainText(status: number, message: string): RestResponse {
  return { status, text: message, contentType: 'text/plain; charset=utf-8' };
}

/** Every password the caller sent, so no answer can echo one. */
function sentPasswords(req: RestRequest | undefined): string[] {
  const tasks = req && isObject(req.body) && Array.isArray(req.body.Tasks) ? req.body.Tasks : [];
  const out: string[] = [];
  for (const t of tasks) {
    const pw = isObject(t) && isObject(t.Config) && isObject(t.Config.ConnectionConfig) ? t.Config.ConnectionConfig.Password : undefined;
    if (typeof pw === 'string' && pw.length >= 3) out.push(pw);
  }
  return out;
}

export function redact(message: string, req: RestRequest | undefined): string {
  let out = message;
  for (const pw of sentPasswords(req)) out = out.split(pw).join(MASKED_PASSWORD);
  return out;
}

export function graphqlErrorResponse(errors: GraphQLErrorShape[], req: RestRequest, notFound: string = UdupMessage.JobNotFound): RestResponse {
  const first = errors[0]!;
  const code = String(first.extensions?.code ?? ErrorCode.Internal);
  const status = STATUS_BY_CODE[code] ?? 500;
  if (status === 404) return plainText(404, notFound);
  const message = status === 500 ? 'internal error' : errors.map((e) => e.message).join('; ');
  return plainText(status, redact(message, req));
}

// ---------------------------------------------------------------- query params

export function isPretty(req: RestRequest | undefined): boolean {
  const v = req?.query[UdupParam.Pretty];
  if (v === undefined) return false;
  const first = Array.isArray(v) ? v[0] ?? '' : v;
  return first === '' || first !== '0';
}

export function serialize(value: unknown, req: RestRequest | undefined): string {
  return isPretty(req) ? `${JSON.stringify(value, null, 4)}\n` : JSON.stringify(value);
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration (as Udup's ?wait=), in ms; undefined when malformed. */
export function parseGoDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let at = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) { total += Number(m[1]) * DURATION_UNITS[m[2]!]!; at = re.lastIndex; }
  return at === s.length && s.length > 0 ? total : undefined;
}

/** `?index=N&wait=D`: N as a number (0 = none) and the wait in ms (index without wait waits MAX_WAIT_MS). */
export function blockingParams(req: RestRequest): { index: number; waitMs: number } {
  const one = (k: string) => { const v = req.query[k]; return Array.isArray(v) ? v[0] : v; };
  const rawIndex = one(UdupParam.Index);
  const rawWait = one(UdupParam.Wait);
  let index = 0;
  if (rawIndex) {
    if (!/^\d+$/.test(rawIndex)) throw new RestError(400, UdupMessage.InvalidIndex);
    index = Number(rawIndex);
  }
  let waitMs = MAX_WAIT_MS;
  if (rawWait) {
    const ms = parseGoDuration(rawWait);
    if (ms === undefined) throw new RestError(400, UdupMessage.InvalidWait);
    waitMs = ms;
  }
  return { index, waitMs: index > 0 ? Math.min(waitMs, MAX_WAIT_MS) : 0 };
}

// ---------------------------------------------------------------- job input

export interface ConnectionVars { kind: 'MYSQL'; host: string; port: number; user: string; password: string }
/** A table selection; `where` is dtle's per-table `Where` (a row filter). */
export interface TableVars { schema: string; tables?: string[]; where?: string }
export interface JobInputVars {
  name: string; type: 'SYNCHRONOUS' | 'MIGRATION' | 'SUBSCRIBE';
  source: ConnectionVars; destination?: ConnectionVars; tables?: TableVars[]; ignoreTables?: TableVars[];
  parallelWorkers?: number; replChanBufferSize?: number; msgsLimit?: number; msgBytesLimit?: number; bytesLimit?: number;
  startPosition?: string; nodeHints?: Record<string, string>; paused?: boolean;
}
export type JobUpdateVars = Pick<JobInputVars, 'parallelWorkers' | 'replChanBufferSize' | 'msgsLimit' | 'msgBytesLimit' | 'bytesLimit' | 'tables'>;

/** A decoded Udup job: what to create, and the ID the caller named (if any). */
export interface UdupJobRequest { id?: string; input: JobInputVars }

const isObject = (v: unknown): v is Record<string, any> => !!v && typeof v === 'object' && !Array.isArray(v);
const bad = (message: string) => new RestError(400, message);

/** mapstructure's WeakDecode accepted "13307" for 13307; so do we. */
function weakInt(v: unknown, what: string, opts: { min?: number; max?: number } = {}): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < (opts.min ?? 0) || n > (opts.max ?? 2_147_483_647)) throw bad(`${what} must be an integer between ${opts.min ?? 0} and ${opts.max ?? 2_147_483_647}`);
  return n;
}

function weakString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw bad(`${what} must be a string`);
}

function driverKind(driver: unknown): 'MYSQL' {
  if (driver === undefined || driver === null || driver === '') return 'MYSQL';
  if (typeof driver === 'string' && driver.toLowerCase() === 'mysql') return 'MYSQL';
  throw bad(`unknown driver '${String(driver)}'`);
}

function connectionOf(task: Record<string, any>, type: UdupTaskType): ConnectionVars {
  const what = `Task ${type} validation failed:`;
  if (!isObject(task.Config)) throw bad(`${what} missing Config`);
  const cc = task.Config.ConnectionConfig;
  if (!isObject(cc)) throw bad(`${what} missing Config.ConnectionConfig`);
  const host = weakString(cc.Host, `${what} ConnectionConfig.Host`);
  if (!host) throw bad(`${what} missing ConnectionConfig.Host`);
  const port = weakInt(cc.Port, `${what} ConnectionConfig.Port`, { min: 1, max: 65535 });
  if (port === undefined) throw bad(`${what} missing ConnectionConfig.Port`);
  const user = weakString(cc.User, `${what} ConnectionConfig.User`);
  if (!user) throw bad(`${what} missing ConnectionConfig.User`);
  const password = weakString(cc.Password, `${what} ConnectionConfig.Password`) ?? '';
  return { kind: driverKind(task.Driver), host, port, user, password };
}

/**
 * ReplicateDoDb (or dtle's ReplicateIgnoreDb) as table selections. A table
 * given with dtle's `Where` is a selection of its own carrying that row
 * filter; the other tables of the schema stay together in one.
 */
function tablesOf(config: Record<string, any>, field = 'ReplicateDoDb'): TableVars[] | undefined {
  const dbs = config[field];
  if (dbs === undefined || dbs === null) return undefined;
  if (!Array.isArray(dbs)) throw bad(`${field} must be an array`);
  return dbs.flatMap((db, i): TableVars[] => {
    if (!isObject(db)) throw bad(`${field}[${i}] must be an object`);
    const schema = weakString(db.TableSchema, `${field}[${i}].TableSchema`);
    if (!schema) throw bad(`${field}[${i}].TableSchema is required`);
    if (db.Tables === undefined || db.Tables === null) return [{ schema }];
    if (!Array.isArray(db.Tables)) throw bad(`${field}[${i}].Tables must be an array`);
    const plain: string[] = [];
    const filtered: TableVars[] = [];
    db.Tables.forEach((t: unknown, j: number) => {
      const name = isObject(t) ? weakString(t.TableName, `${field}[${i}].Tables[${j}].TableName`) : weakString(t, `${field}[${i}].Tables[${j}]`);
      if (!name) throw bad(`${field}[${i}].Tables[${j}].TableName is required`);
      const where = isObject(t) ? weakString(t.Where, `${field}[${i}].Tables[${j}].Where`) : undefined;
      if (where && field !== 'ReplicateDoDb') throw bad(`${field}[${i}].Tables[${j}].Where: a row filter belongs in ReplicateDoDb`);
      if (where) filtered.push({ schema, tables: [name], where });
      else plain.push(name);
    });
    if (!plain.length && !filtered.length) return [{ schema }];
    return [...(plain.length ? [{ schema, tables: plain }] : []), ...filtered];
  });
}

/** Udup zero values mean "default": 0 is left out so Tributary's default applies. */
const nonZero = (n: number | undefined) => (n ? n : undefined);

function limitsOf(src: Record<string, any>, dest: Record<string, any> | undefined): Omit<JobUpdateVars, 'tables'> {
  const sc = isObject(src.Config) ? src.Config : {};
  const dc = dest && isObject(dest.Config) ? dest.Config : {};
  const pick = (key: string, first: Record<string, any>, second: Record<string, any>) =>
    nonZero(weakInt(first[key], key)) ?? nonZero(weakInt(second[key], key));
  return {
    // Apply lanes belong to the destination; the source's value is the fallback.
    parallelWorkers: pick('ParallelWorkers', dc, sc),
    replChanBufferSize: pick('ReplChanBufferSize', sc, dc),
    msgsLimit: pick('MsgsLimit', sc, dc),
    msgBytesLimit: pick('MsgBytesLimit', sc, dc),
    bytesLimit: pick('BytesLimit', sc, dc),
  };
}

const JOB_TYPES: Record<string, JobInputVars['type']> = {
  [UdupJobType.Synchronous]: 'SYNCHRONOUS', [UdupJobType.Migration]: 'MIGRATION', [UdupJobType.Subscribe]: 'SUBSCRIBE',
};

/** Validate and translate a Udup job body (POST /v1/jobs, PUT|POST /v1/job/:id). Throws RestError(400). */
export function decodeUdupJob(body: unknown): UdupJobRequest {
  if (body === undefined) throw bad('Request body is empty: expected a Udup job in JSON');
  if (!isObject(body)) throw bad('Request body must be a JSON object (a Udup job)');
  const name = body.Name;
  if (name === undefined || name === null) throw bad(UdupMessage.NoName);
  if (typeof name !== 'string') throw bad('Job Name must be a string');
  if (name.trim() === '') throw bad('Missing job name');
  const rawType = weakString(body.Type, 'Job Type') || UdupJobType.Synchronous;
  const type = JOB_TYPES[rawType];
  if (!type) throw bad(`Invalid job type '${rawType}': expected synchronous, migration or subscribe`);
  const id = body.ID === undefined || body.ID === null || body.ID === '' ? undefined : weakString(body.ID, 'Job ID');

  if (!Array.isArray(body.Tasks) || body.Tasks.length === 0) throw bad(UdupMessage.NoTasks);
  const byType = new Map<string, { task: Record<string, any>; at: number }>();
  body.Tasks.forEach((task: unknown, i: number) => {
    if (!isObject(task)) throw bad(`Job task ${i + 1} must be an object`);
    const t = weakString(task.Type, `Job task ${i + 1} Type`);
    if (!t) throw bad(`Job task ${i + 1} missing type`);
    if (t !== UdupTaskType.Src && t !== UdupTaskType.Dest) throw bad(`Job task ${i + 1} has unknown type '${t}': expected Src or Dest`);
    const seen = byType.get(t);
    if (seen) throw bad(`Job task ${i + 1} redefines '${t}' from task ${seen.at + 1}`);
    byType.set(t, { task, at: i });
  });
  const src = byType.get(UdupTaskType.Src)?.task;
  const dest = byType.get(UdupTaskType.Dest)?.task;
  if (!src) throw bad('Job has no Src task');
  if (!dest && type !== 'SUBSCRIBE') throw bad('Job has no Dest task');

  const source = connectionOf(src, UdupTaskType.Src);
  const destination = dest ? connectionOf(dest, UdupTaskType.Dest) : undefined;
  const nodeHints: Record<string, string> = {};
  for (const [t, { task }] of byType) {
    const nodeId = weakString(task.NodeId, `Task ${t} NodeId`);
    if (nodeId) nodeHints[t] = nodeId;
  }
  const gtid = weakString(src.Config.Gtid, 'Task Src Config.Gtid');
  const input: JobInputVars = {
    name, type, source, destination, tables: tablesOf(src.Config), ignoreTables: tablesOf(src.Config, 'ReplicateIgnoreDb'), ...limitsOf(src, dest),
    startPosition: gtid || undefined, nodeHints: Object.keys(nodeHints).length ? nodeHints : undefined,
    // Nomad's job "Stop": registered but not running. It is how a caller creates a job whose source is not ready yet.
    paused: body.Stop === true ? true : undefined,
  };
  return { id, input: dropUndefined(input) };
}

/** The part of a Udup job an existing job can take; connection or type changes are refused. */
export function updateFromUdupJob(req: UdupJobRequest, existing: Pick<GqlJob, 'type' | 'source' | 'destination'>): JobUpdateVars {
  const { input } = req;
  if (input.type.toLowerCase() !== existing.type.toLowerCase()) {
    throw bad(`Job Type cannot change from '${existing.type.toLowerCase()}' to '${input.type.toLowerCase()}': delete the job and register it again`);
  }
  for (const [label, sent, have] of [['Src', input.source, existing.source], ['Dest', input.destination, existing.destination]] as const) {
    if (!sent || !have) continue;
    if (sent.host !== have.host || sent.port !== have.port || sent.user !== have.user || sent.kind.toLowerCase() !== have.kind.toLowerCase()) {
      throw bad(`Task ${label} ConnectionConfig cannot change on an existing job: delete the job and register it again`);
    }
  }
  return dropUndefined({
    parallelWorkers: input.parallelWorkers, replChanBufferSize: input.replChanBufferSize, msgsLimit: input.msgsLimit,
    msgBytesLimit: input.msgBytesLimit, bytesLimit: input.bytesLimit, tables: input.tables,
  });
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---------------------------------------------------------------- job views

const DRIVER_BY_KIND: Record<string, string> = { mysql: 'MySQL', postgres: 'PostgreSQL' };

function taskNode(job: GqlJob, type: UdupTaskType): { hint?: string; actual?: string } {
  const pattern = type === UdupTaskType.Src ? /capture|snapshot|src|source|extract/i : /apply|dest/i;
  const task = job.tasks?.find((t) => t.name === type) ?? job.tasks?.find((t) => pattern.test(t.kind));
  return { hint: job.spec?.nodeHints?.[type] ?? task?.nodeHint ?? undefined, actual: task?.nodeId ?? undefined };
}

/**
 * Selections back in Udup's shape: the named tables of a schema in one entry
 * (a table's row filter as dtle's `Where`), a whole-schema selection as an
 * entry of its own with no Tables, so that decoding it again gives the same.
 */
function udupSchemas(selections: { schema: string; tables?: string[]; where?: string }[]): Record<string, unknown>[] {
  const out: { TableSchema: string; Tables: Record<string, string>[] }[] = [];
  const named = new Map<string, { TableSchema: string; Tables: Record<string, string>[] }>();
  for (const s of selections) {
    if (!s.tables?.length) { out.push({ TableSchema: s.schema, Tables: [] }); continue; }
    let entry = named.get(s.schema);
    if (!entry) { entry = { TableSchema: s.schema, Tables: [] }; named.set(s.schema, entry); out.push(entry); }
    for (const t of s.tables) entry.Tables.push(s.where ? { TableName: t, Where: s.where } : { TableName: t });
  }
  return out;
}

function udupTask(job: GqlJob, type: UdupTaskType, conn: GqlConnection): Record<string, unknown> {
  const spec = job.spec ?? {};
  const node = taskNode(job, type);
  const config: Record<string, unknown> = { Gtid: spec.startPosition ?? '', ParallelWorkers: spec.parallelWorkers ?? 0 };
  if (type === UdupTaskType.Src) {
    Object.assign(config, {
      ReplChanBufferSize: spec.replChanBufferSize ?? 0, MsgBytesLimit: spec.msgBytesLimit ?? 0, MsgsLimit: spec.msgsLimit ?? 0,
      BytesLimit: spec.bytesLimit ?? 0,
      ReplicateDoDb: udupSchemas(spec.tables?.schemas ?? []),
    });
    if (spec.tables?.ignore?.length) config.ReplicateIgnoreDb = udupSchemas(spec.tables.ignore);
  }
  config.ConnectionConfig = { Host: conn.host, Port: conn.port, User: conn.user, Password: MASKED_PASSWORD };
  return {
    Type: type, NodeId: node.hint ?? node.actual ?? '', NodeName: node.actual ?? '',
    Driver: DRIVER_BY_KIND[conn.kind.toLowerCase()] ?? conn.kind, Config: config, Leader: type === UdupTaskType.Dest, Constraints: null,
  };
}

/** GET /v1/job/:id — Udup's models.Job. ID is the job's numeric index. */
export function udupJob(job: GqlJob): Record<string, unknown> {
  const tasks = [
    ...(job.source ? [udupTask(job, UdupTaskType.Src, job.source)] : []),
    ...(job.destination ? [udupTask(job, UdupTaskType.Dest, job.destination)] : []),
  ];
  return {
    Region: UDUP_REGION, ID: job.index, Name: job.name, Type: job.type.toLowerCase(), Datacenters: [UDUP_DATACENTER], Constraints: null,
    Tasks: tasks, Status: udupStatus(job.status), StatusDescription: job.statusReason ?? job.error ?? '', EnforceIndex: false,
    CreateIndex: indexNumber(job.createIndex), ModifyIndex: indexNumber(job.modifyIndex), JobModifyIndex: indexNumber(job.modifyIndex),
  };
}

/** GET /v1/jobs element — Udup's JobListStub. */
export function udupJobStub(job: GqlJob): Record<string, unknown> {
  return {
    ID: job.index, Name: job.name, Type: job.type.toLowerCase(), Status: udupStatus(job.status), StatusDescription: job.statusReason ?? job.error ?? '',
    CreateIndex: indexNumber(job.createIndex), ModifyIndex: indexNumber(job.modifyIndex), JobModifyIndex: indexNumber(job.modifyIndex),
  };
}

// ---------------------------------------------------------------- nodes

const unixSeconds = (iso: string) => Math.floor(Date.parse(iso) / 1000) || 0;

/** GET /v1/nodes element — Udup's NodeListStub. A node's indexes are its start time in seconds. */
export function udupNodeStub(n: GqlNode): Record<string, unknown> {
  return {
    ID: n.id, Datacenter: UDUP_DATACENTER, Name: n.host, Status: 'ready', StatusDescription: '',
    CreateIndex: unixSeconds(n.startedAt), ModifyIndex: unixSeconds(n.startedAt),
  };
}

/** GET /v1/node/:id — Udup's Node. */
export function udupNode(n: GqlNode, req: RestRequest): Record<string, unknown> {
  return {
    ID: n.id, Datacenter: UDUP_DATACENTER, Name: n.host, HTTPAddr: `${req.local.address}:${req.local.port}`,
    Attributes: { 'unique.hostname': n.host, 'tributary.role': n.role, 'tributary.pid': String(n.pid), 'tributary.version': n.version, ...(n.cluster ? { 'tributary.cluster': n.cluster } : {}) },
    Status: 'ready', StatusDescription: '', StatusUpdatedAt: unixSeconds(n.lastSeen),
    CreateIndex: unixSeconds(n.startedAt), ModifyIndex: unixSeconds(n.startedAt),
  };
}

/** GET /v1/members — Udup's ServerMembersResponse: every gateway process is a server member. */
export function udupMembers(nodes: GqlNode[], req: RestRequest): Record<string, unknown> {
  const servers = nodes.filter((n) => n.role === 'serve' || n.role === 'start');
  return {
    ServerName: servers[0]?.host ?? '', ServerRegion: UDUP_REGION, ServerDC: UDUP_DATACENTER,
    Members: servers.map((n) => ({
      Name: `${n.host}.${UDUP_REGION}`, Addr: n.host, Port: req.local.port,
      Tags: { role: 'udup', region: UDUP_REGION, dc: UDUP_DATACENTER, id: n.id, build: n.version },
      Status: 'alive', ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 4, DelegateCur: 4,
    })),
  };
}

export const isObjectValue = isObject;
