/**
 * Udup REST API v1 as a route table (see docs/compat.md, "Udup v1").
 * Translation only: each route names its GraphQL operation and shapes the
 * answer with udup.mapping.ts.
 */
import type { GraphQLErrorShape } from '../executor.ts';
import { RestError, defineRoute, type LongPoll, type ParamDoc, type ResponseDoc, type RestRequest, type RestRoute } from '../rest-route.ts';
import {
  UdupHeader, UdupMessage, UdupParam, blockingParams, decodeUdupJob, graphqlErrorResponse, indexNumber, readResponse,
  udupJob, udupJobStub, udupMembers, udupNode, udupNodeStub, updateFromUdupJob, writeResponse,
  type GqlJob, type GqlNode, type UdupJobRequest,
} from './udup.mapping.ts';
import { addressSchema, jobSchema, jobStubSchema, membersSchema, nodeSchema, nodeStubSchema, textSchema, writeSchema } from './udup.schemas.ts';
import { udupStatus } from './udup.dialect.ts';

// ---------------------------------------------------------------- operations

const JOB_FIELDS = `
  id index name type status statusReason error spec createIndex modifyIndex
  tasks { kind name status nodeId nodeHint placement }
  source { kind host port user }
  destination { kind host port user }`;

export const UdupOperation = {
  Job: `query UdupJob($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`,
  Jobs: 'query UdupJobs { jobs(first: 1000) { edges { node { id index name type status statusReason error createIndex modifyIndex } } } }',
  Lookup: 'query UdupLookup($id: ID!) { job(id: $id) { id index type status modifyIndex source { kind host port user } destination { kind host port user } } }',
  Create: 'mutation UdupRegister($input: JobInput!) { createJob(input: $input) { id index modifyIndex } }',
  Update: 'mutation UdupUpdate($id: ID!, $input: JobUpdateInput!) { updateJob(id: $id, input: $input) { id index modifyIndex } }',
  Pause: 'mutation UdupPause($id: ID!) { pauseJob(id: $id) { id modifyIndex } }',
  Resume: 'mutation UdupResume($id: ID!) { resumeJob(id: $id) { id modifyIndex } }',
  Delete: 'mutation UdupDeregister($id: ID!) { deleteJob(id: $id) }',
  Nodes: 'query UdupNodes { nodes(first: 1000) { edges { node { id role host pid startedAt lastSeen cluster version } } } }',
} as const;

type LookupData = { job: (Pick<GqlJob, 'id' | 'index' | 'type' | 'status' | 'modifyIndex' | 'source' | 'destination'>) | null };
type MutationJob = { id: string; index?: number; modifyIndex: string };
type NodesData = { nodes: { edges: { node: GqlNode }[] } };
type JobsData = { jobs: { edges: { node: GqlJob }[] } };

// ---------------------------------------------------------------- documentation bits

export const SEED_JOB_EXAMPLE = {
  Name: 'exam-7-9',
  Type: 'synchronous',
  Tasks: [
    {
      Type: 'Src', NodeId: '1eda45f8-df9b-1541-9009-83952e7b672a', Driver: 'MySQL',
      Config: {
        Gtid: '', ParallelWorkers: 4, ReplChanBufferSize: 600, MsgBytesLimit: 20480, ReplicateDoDb: [{ TableSchema: 'sbtest' }],
        ConnectionConfig: { Host: '192.168.99.100', Port: 13307, User: 'root', Password: 'rootroot' },
      },
    },
    {
      Type: 'Dest', NodeId: 'a5e9ad80-8e77-03fd-7fa3-31e007ecdcbe', Driver: 'MySQL',
      Config: { Gtid: '', ParallelWorkers: 4, ConnectionConfig: { Host: '192.168.99.100', Port: 13309, User: 'root', Password: 'rootroot' } },
    },
  ],
};

const WRITE_EXAMPLE = { Index: 7, KnownLeader: false, LastContact: 0, Success: true };
const META_HEADERS = { [UdupHeader.Index]: 'Modify index of the answer', [UdupHeader.KnownLeader]: 'true on reads, false on writes', [UdupHeader.LastContact]: 'Always 0' };
const PRETTY: ParamDoc = { name: UdupParam.Pretty, in: 'query', description: 'Indent the JSON answer (any value but 0).' };
const BLOCKING: ParamDoc[] = [
  { name: UdupParam.Index, in: 'query', type: 'integer', description: 'Blocking query: answer once the modify index exceeds this.' },
  { name: UdupParam.Wait, in: 'query', description: 'Longest wait for a blocking query, Go duration (e.g. 5s); default and cap 5m.' },
];
const JOB_ID: ParamDoc = { name: 'id', in: 'path', description: 'Job ID (numeric index), UUID or name.', example: '7' };
const TEXT_400: ResponseDoc = { status: 400, description: 'Invalid job or unreachable database (plain text)', example: UdupMessage.NoName, contentType: 'text/plain', schema: textSchema };
const TEXT_404: ResponseDoc = { status: 404, description: 'No such job (plain text)', example: UdupMessage.JobNotFound, contentType: 'text/plain', schema: textSchema };
const WRITTEN: ResponseDoc = { status: 200, description: 'Done', example: WRITE_EXAMPLE, headers: META_HEADERS, schema: writeSchema };

// ---------------------------------------------------------------- hooks

const maxIndex = (items: { modifyIndex: string | number }[]) => items.reduce((m, j) => Math.max(m, indexNumber(j.modifyIndex)), 0);
const idsOf = (items: { id: string }[]) => items.map((j) => j.id).join(',');

function blockingOn<T>(items: (data: T) => { id: string; modifyIndex: string | number }[]): LongPoll<T> {
  return {
    waitMs: (req) => blockingParams(req).waitMs,
    // A deletion lowers no index, so a changed membership also ends the wait.
    ready: (data, req, initial) => maxIndex(items(data)) > blockingParams(req).index || idsOf(items(data)) !== idsOf(items(initial)),
  };
}

function prefixFilter(req: RestRequest): (s: Record<string, unknown>) => boolean {
  const raw = req.query[UdupParam.Prefix];
  const prefix = Array.isArray(raw) ? raw[0] : raw;
  return (s) => !prefix || String(s.ID).startsWith(prefix) || String(s.Name).startsWith(prefix);
}

const decoded = new WeakMap<RestRequest, UdupJobRequest>();
/** The body decoded once per request (lookup, operation and variables all need it). */
function jobBody(req: RestRequest): UdupJobRequest {
  let d = decoded.get(req);
  if (!d) { d = decodeUdupJob(req.body); decoded.set(req, d); }
  return d;
}

const errorWith = (notFound: string) => (errors: GraphQLErrorShape[], req: RestRequest) => graphqlErrorResponse(errors, req, notFound);

/** Register (create) or, when the named job exists, update it: shared by POST /v1/jobs and PUT|POST /v1/job/:id. */
function registerRoute(base: Pick<RestRoute, 'method' | 'path' | 'summary' | 'description' | 'params'>, idOf: (req: RestRequest) => string | undefined): RestRoute {
  return defineRoute<{ createJob?: MutationJob; updateJob?: MutationJob }, LookupData>({
    ...base,
    input: 'json',
    requestExample: SEED_JOB_EXAMPLE,
    responses: [WRITTEN, TEXT_400, { status: 409, description: 'A job with this name exists (plain text)', contentType: 'text/plain', schema: textSchema }],
    lookup: {
      operation: UdupOperation.Lookup,
      variables: (req) => { jobBody(req); const id = idOf(req); return id ? { id } : null; },
    },
    operation: (_req, lookup) => (lookup?.job ? UdupOperation.Update : UdupOperation.Create),
    variables: (req, lookup) => (lookup?.job
      ? { id: lookup.job.id, input: updateFromUdupJob(jobBody(req), lookup.job) }
      : { input: jobBody(req).input }),
    result: (data) => writeResponse(indexNumber((data.updateJob ?? data.createJob)!.modifyIndex)),
  });
}

/** pause | resume: idempotent like Udup's UpdateStatus; an unknown job is 404. */
function statusRoute(action: 'pause' | 'resume'): RestRoute {
  const target = action === 'pause' ? 'pause' : 'running';
  return defineRoute<{ pauseJob?: MutationJob; resumeJob?: MutationJob } | undefined, LookupData>({
    method: ['POST', 'PUT'],
    path: `/v1/job/:id/${action}`,
    input: 'query',
    summary: action === 'pause' ? 'Pause a job (its tasks stop at a checkpoint)' : 'Resume a paused or failed job from its checkpoints',
    params: [JOB_ID],
    responses: [WRITTEN, TEXT_404],
    lookup: { operation: UdupOperation.Lookup, variables: (req) => ({ id: req.params.id }) },
    operation: (_req, lookup) => {
      if (!lookup?.job) throw new RestError(404, UdupMessage.JobNotFound);
      if (udupStatus(lookup.job.status) === target) return undefined;
      return action === 'pause' ? UdupOperation.Pause : UdupOperation.Resume;
    },
    variables: (_req, lookup) => ({ id: lookup!.job!.id }),
    result: (data, _req, lookup) => writeResponse(indexNumber((data?.pauseJob ?? data?.resumeJob)?.modifyIndex ?? lookup!.job!.modifyIndex)),
  });
}

// ---------------------------------------------------------------- the table

export const udupRoutes: RestRoute[] = [
  registerRoute({
    method: ['POST', 'PUT'], path: '/v1/jobs', summary: 'Register a synchronization / migration job',
    description: 'Creates the job and starts it. With an `ID` naming an existing job (index, UUID or name), updates that job instead.',
  }, (req) => jobBody(req).id),

  defineRoute<JobsData>({
    method: 'GET', path: '/v1/jobs', input: 'query', summary: 'List jobs',
    params: [PRETTY, ...BLOCKING, { name: UdupParam.Prefix, in: 'query', description: 'Only jobs whose ID or Name starts with this.' }],
    responses: [{ status: 200, description: 'Job stubs', headers: META_HEADERS, schema: { type: 'array', items: jobStubSchema }, example: [{ ID: 7, Name: 'exam-7-9', Type: 'synchronous', Status: 'running', StatusDescription: '', CreateIndex: 7, ModifyIndex: 9, JobModifyIndex: 9 }] }],
    operation: UdupOperation.Jobs,
    longPoll: blockingOn((d) => d.jobs.edges.map((e) => e.node)),
    result: (data, req) => {
      const jobs = data.jobs.edges.map((e) => e.node);
      return readResponse(jobs.map(udupJobStub).filter(prefixFilter(req)), maxIndex(jobs));
    },
  }),

  defineRoute<{ job: GqlJob | null }>({
    method: 'GET', path: '/v1/job/:id', input: 'query', summary: 'Read a job',
    params: [JOB_ID, PRETTY, ...BLOCKING],
    responses: [{ status: 200, description: 'The job; passwords are "*"', headers: META_HEADERS, schema: jobSchema }, TEXT_404],
    operation: UdupOperation.Job,
    variables: (req) => ({ id: req.params.id }),
    longPoll: blockingOn((d) => (d.job ? [d.job] : [])),
    result: (data) => {
      if (!data.job) throw new RestError(404, UdupMessage.JobNotFound);
      return readResponse(udupJob(data.job), indexNumber(data.job.modifyIndex));
    },
  }),

  registerRoute({
    method: ['PUT', 'POST'], path: '/v1/job/:id', params: [JOB_ID], summary: 'Update a job (or register it when it does not exist)',
    description: 'Updates lanes, limits and ReplicateDoDb of an existing job; connections and Type cannot change. Like Udup, a body for a job that does not exist registers it.',
  }, (req) => req.params.id),

  defineRoute<{ deleteJob: boolean }, LookupData>({
    method: 'DELETE', path: '/v1/job/:id', input: 'query', summary: 'Deregister (stop and delete) a job',
    params: [JOB_ID], responses: [WRITTEN, TEXT_404],
    lookup: { operation: UdupOperation.Lookup, variables: (req) => ({ id: req.params.id }) },
    operation: (_req, lookup) => {
      if (!lookup?.job) throw new RestError(404, UdupMessage.JobNotFound);
      return UdupOperation.Delete;
    },
    variables: (_req, lookup) => ({ id: lookup!.job!.id }),
    result: (_data, _req, lookup) => writeResponse(indexNumber(lookup!.job!.modifyIndex)),
  }),

  statusRoute('pause'),
  statusRoute('resume'),

  defineRoute<NodesData>({
    method: 'GET', path: '/v1/nodes', input: 'query', summary: 'List nodes (running Tributary processes)',
    params: [PRETTY, ...BLOCKING],
    responses: [{ status: 200, description: 'Node stubs', headers: META_HEADERS, schema: { type: 'array', items: nodeStubSchema } }],
    operation: UdupOperation.Nodes,
    longPoll: blockingOn((d) => d.nodes.edges.map((e) => ({ id: e.node.id, modifyIndex: Math.floor(Date.parse(e.node.startedAt) / 1000) }))),
    result: (data) => {
      const stubs = data.nodes.edges.map((e) => udupNodeStub(e.node));
      return readResponse(stubs, stubs.reduce((m, s) => Math.max(m, s.ModifyIndex as number), 0));
    },
  }),

  defineRoute<NodesData>({
    method: 'GET', path: '/v1/node/:id', input: 'query', summary: 'Read a node',
    params: [{ name: 'id', in: 'path', description: 'Node ID' }, PRETTY],
    responses: [{ status: 200, description: 'The node', headers: META_HEADERS, schema: nodeSchema }, { status: 404, description: 'No such node', example: UdupMessage.NodeNotFound, contentType: 'text/plain', schema: textSchema }],
    operation: UdupOperation.Nodes,
    error: errorWith(UdupMessage.NodeNotFound),
    result: (data, req) => {
      const node = data.nodes.edges.map((e) => e.node).find((n) => n.id === req.params.id || n.host === req.params.id);
      if (!node) throw new RestError(404, UdupMessage.NodeNotFound);
      const view = udupNode(node, req);
      return readResponse(view, view.ModifyIndex as number);
    },
  }),

  defineRoute<NodesData>({
    method: 'GET', path: '/v1/members', input: 'query', summary: 'Server members (gateway processes)',
    params: [PRETTY], responses: [{ status: 200, description: 'Members', schema: membersSchema }],
    operation: UdupOperation.Nodes,
    result: (data, req) => ({ json: udupMembers(data.nodes.edges.map((e) => e.node), req) }),
  }),

  defineRoute<undefined>({
    method: 'GET', path: '/v1/leader', input: 'query', summary: 'Address of the leader: this gateway',
    params: [PRETTY], responses: [{ status: 200, description: 'host:port', example: '127.0.0.1:8190', contentType: 'application/json', schema: addressSchema }],
    result: (_d, req) => ({ json: `${req.local.address}:${req.local.port}` }),
  }),

  defineRoute<undefined>({
    method: 'GET', path: '/v1/peers', input: 'query', summary: 'Raft peers: this gateway',
    params: [PRETTY], responses: [{ status: 200, description: 'host:port list', example: ['127.0.0.1:8190'], schema: { type: 'array', items: addressSchema } }],
    result: (_d, req) => ({ json: [`${req.local.address}:${req.local.port}`] }),
  }),
];
