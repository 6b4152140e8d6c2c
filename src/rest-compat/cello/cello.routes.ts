/**
 * Cello v2 cluster pool API as a route table (see docs/compat.md, "Cello
 * cluster pool v2"). Every route reads parameters Cello's way (query string
 * first, then form or JSON body), runs one GraphQL operation and answers in
 * the `{code, data, error, status}` envelope.
 */
import { RestError, defineRoute, type ParamDoc, type ResponseDoc, type RestRequest, type RestRoute } from '../rest-route.ts';
import {
  CLUSTER_FIELDS, CelloAction, CelloCode, CelloMessage, CelloParam, appliedCluster, bool, celloCluster, fail, int, ok, str, strOrEmpty,
  type GqlCluster,
} from './cello.mapping.ts';
import { EMPTY_DATA, appliedClusterSchema, clusterSchema, failSchema, okSchema } from './cello.schemas.ts';

export const CelloOperation = {
  Apply: `mutation CelloApply($input: ApplyClusterInput!) { applyCluster(input: $input) { ${CLUSTER_FIELDS} } }`,
  Release: 'mutation CelloRelease($clusterId: ID, $userId: String) { releaseCluster(clusterId: $clusterId, userId: $userId) { id releaseStatus } }',
  Start: 'mutation CelloStart($id: ID!) { startCluster(id: $id) { id status } }',
  Stop: 'mutation CelloStop($id: ID!) { stopCluster(id: $id) { id status } }',
  Restart: 'mutation CelloRestart($id: ID!) { restartCluster(id: $id) { id status } }',
  Cluster: `query CelloCluster($id: ID!) { cluster(id: $id) { ${CLUSTER_FIELDS} } }`,
  Clusters: `query CelloClusters($filter: ClusterFilter) { clusters(first: 1000, filter: $filter) { edges { node { ${CLUSTER_FIELDS} } } } }`,
} as const;

// ---------------------------------------------------------------- documentation bits

export const SEED_APPLY_BODY = { action: 'apply', user_id: 'xxx', consensus_plugin: 'pbft', consensus_mode: 'batch', size: 4, allow_multiple: false };
const APPLY_EXAMPLE = {
  code: 200, error: '', status: 'OK',
  data: { api_url: 'http://127.0.0.1:8190', consensus_mode: 'batch', consensus_plugin: 'pbft', daemon_url: 'redis://127.0.0.1:6379/0/tasks-cluster-compute2_4', id: '576ba021-414b-0502-864d-0306a1b2c3d4', name: 'compute2_4', size: 4, user_id: 'xxx' },
};
const OK_EMPTY: ResponseDoc = { status: 200, description: 'Done', example: { code: 200, data: '', error: '', status: 'OK' }, schema: okSchema(EMPTY_DATA) };
const FAIL: ResponseDoc = { status: 400, description: 'Failed; `code` says why (400, 401, 403, 404)', example: { code: 400, data: '', error: 'No available res for xxx', status: 'FAIL' }, schema: failSchema };
const P = (name: string, description: string, type?: ParamDoc['type']): ParamDoc => ({ name, in: 'query', description, ...(type ? { type } : {}) });
const APPLY_PARAMS: ParamDoc[] = [
  P(CelloParam.UserId, 'Who applies. Admin tokens may name anyone; other tokens act as their own name.'),
  P(CelloParam.ConsensusPlugin, 'Label filter (pbft, solo, kafka, ...).'),
  P(CelloParam.ConsensusMode, 'Label filter (batch, classic, sieve, ...).'),
  P(CelloParam.Size, 'Task slots wanted (exact match).', 'integer'),
  P(CelloParam.AllowMultiple, 'True/False: lease another cluster even if the user holds one.'),
];
const FILTER_PARAMS: ParamDoc[] = [
  P(CelloParam.ConsensusPlugin, 'Label filter.'), P(CelloParam.ConsensusMode, 'Label filter.'), P(CelloParam.Size, 'Slots.', 'integer'),
  P(CelloParam.UserId, 'Holder; empty = free clusters.'), P(CelloParam.User, 'Same as user_id.'),
  P(CelloParam.State, 'active (default: all current clusters) or released (released and not leased since).'),
];

// ---------------------------------------------------------------- hooks

function applyVariables(req: RestRequest): Record<string, unknown> {
  const userId = str(req, CelloParam.UserId);
  if (!userId) throw new RestError(400, CelloMessage.ApplyWithoutUser);
  return {
    input: {
      userId,
      consensusPlugin: str(req, CelloParam.ConsensusPlugin, CelloMessage.InvalidPlugin) ?? null,
      consensusMode: str(req, CelloParam.ConsensusMode, CelloMessage.InvalidMode) ?? null,
      size: int(req, CelloParam.Size, CelloMessage.InvalidSize) ?? null,
      allowMultiple: bool(req, CelloParam.AllowMultiple, CelloMessage.InvalidAllowMultiple),
    },
  };
}

function requireClusterId(req: RestRequest): string {
  const id = str(req, CelloParam.ClusterId);
  if (!id) throw new RestError(400, CelloMessage.NoClusterId);
  return id;
}

const action = (req: RestRequest) => str(req, CelloParam.Action);

/** /v2/cluster_op: one route, the action picks the operation. */
const OPERATION_BY_ACTION: Record<CelloAction, string> = {
  [CelloAction.Apply]: CelloOperation.Apply,
  [CelloAction.Release]: CelloOperation.Release,
  [CelloAction.Start]: CelloOperation.Start,
  [CelloAction.Stop]: CelloOperation.Stop,
  [CelloAction.Restart]: CelloOperation.Restart,
};

function clusterOpVariables(req: RestRequest): Record<string, unknown> {
  switch (action(req) as CelloAction) {
    case CelloAction.Apply: return applyVariables(req);
    case CelloAction.Release: {
      const clusterId = str(req, CelloParam.ClusterId);
      const userId = str(req, CelloParam.UserId);
      if (!clusterId && !userId) throw new RestError(400, CelloMessage.NoClusterId);
      return clusterId ? { clusterId } : { userId };
    }
    default: return { id: requireClusterId(req) };
  }
}

function filterFrom(req: RestRequest): Record<string, unknown> {
  const user = strOrEmpty(req, CelloParam.UserId) ?? strOrEmpty(req, CelloParam.User);
  return {
    consensusPlugin: str(req, CelloParam.ConsensusPlugin),
    consensusMode: str(req, CelloParam.ConsensusMode),
    size: int(req, CelloParam.Size, CelloMessage.InvalidSize),
    userId: user,
    released: str(req, CelloParam.State) === 'released' ? true : undefined,
  };
}

const KNOWN_STATES = new Set(['active', 'released']);

// ---------------------------------------------------------------- the table

export const celloRoutes: RestRoute[] = [
  defineRoute<{ applyCluster?: GqlCluster } | undefined>({
    method: ['GET', 'POST'], path: '/v2/cluster_op', input: 'any',
    summary: 'Operate a cluster: action = apply | release | start | stop | restart',
    description: 'Parameters from the query string, a form body or JSON. `?action=apply?user_id=xxxx` (the document\'s second `?`) is accepted. '
      + 'apply answers the leased cluster; release runs in the background (watch /v2/cluster/{id}).',
    params: [P(CelloParam.Action, 'apply, release, start, stop or restart'), P(CelloParam.ClusterId, 'release/start/stop/restart: the cluster (id or name)'), ...APPLY_PARAMS],
    requestExample: SEED_APPLY_BODY,
    responses: [{ status: 200, description: 'apply: the cluster; other actions: empty data', example: APPLY_EXAMPLE, schema: okSchema({ anyOf: [appliedClusterSchema, EMPTY_DATA] }) }, FAIL],
    operation: (req) => {
      const a = action(req);
      if (!a || !(a in OPERATION_BY_ACTION)) throw new RestError(400, CelloMessage.UnknownAction);
      return OPERATION_BY_ACTION[a as CelloAction];
    },
    variables: clusterOpVariables,
    result: (data) => (data?.applyCluster ? ok(appliedCluster(data.applyCluster)) : ok()),
  }),

  defineRoute<{ clusters: { edges: { node: GqlCluster }[] } } | undefined>({
    method: ['GET', 'POST'], path: '/v2/clusters', input: 'any',
    summary: 'List clusters matching filters',
    description: '`user: ""` (or `user_id: ""`) lists free clusters. An unknown `state` answers an empty list, as Cello did.',
    params: FILTER_PARAMS,
    requestExample: { consensus_plugin: 'pbft', consensus_mode: 'classic', size: 4, user: '' },
    responses: [{ status: 200, description: 'Clusters', example: { code: 200, data: [], error: '', status: 'OK' }, schema: okSchema({ type: 'array', items: clusterSchema }) }, FAIL],
    operation: (req) => (KNOWN_STATES.has(str(req, CelloParam.State) ?? 'active') ? CelloOperation.Clusters : undefined),
    variables: (req) => ({ filter: filterFrom(req) }),
    result: (data) => ok(data ? data.clusters.edges.map((e) => celloCluster(e.node)) : []),
  }),

  defineRoute<{ cluster: GqlCluster | null }>({
    method: 'GET', path: '/v2/cluster/:id', input: 'query',
    summary: 'Read a cluster (by id or name)',
    responses: [{ status: 200, description: 'The cluster', schema: okSchema(clusterSchema) }, { status: 400, description: 'Failed; unknown cluster: code 404', example: { code: 404, data: '', error: 'cluster not found with id=xxx', status: 'FAIL' }, schema: failSchema }],
    operation: CelloOperation.Cluster,
    variables: (req) => ({ id: req.params.id }),
    result: (data, req) => (data.cluster ? ok(celloCluster(data.cluster)) : fail(CelloMessage.clusterNotFound(req.params.id ?? ''), CelloCode.NotFound)),
  }),

  // Deprecated in Cello ("will deprecate") but still served by it.
  defineRoute<{ applyCluster: GqlCluster }>({
    method: ['GET', 'POST'], path: '/v2/cluster_apply', input: 'any',
    summary: 'Deprecated: apply for a cluster (same as cluster_op?action=apply)',
    params: APPLY_PARAMS, requestExample: { user_id: 'xxx', consensus_plugin: 'pbft', consensus_mode: 'batch', size: 4 },
    responses: [{ status: 200, description: 'The leased cluster', example: APPLY_EXAMPLE, schema: okSchema(appliedClusterSchema) }, FAIL],
    operation: CelloOperation.Apply,
    variables: applyVariables,
    result: (data) => ok(appliedCluster(data.applyCluster)),
  }),

  defineRoute({
    method: ['GET', 'POST'], path: '/v2/cluster_release', input: 'any',
    summary: 'Deprecated: release a cluster (cluster_id) or all of a user\'s clusters (user_id)',
    params: [P(CelloParam.ClusterId, 'The cluster'), P(CelloParam.UserId, 'Every cluster of this user')],
    responses: [OK_EMPTY, FAIL],
    operation: CelloOperation.Release,
    variables: (req) => {
      const clusterId = str(req, CelloParam.ClusterId);
      const userId = str(req, CelloParam.UserId);
      if (!clusterId && !userId) throw new RestError(400, CelloMessage.ReleaseWithoutId);
      return clusterId ? { clusterId } : { userId };
    },
    result: () => ok(),
  }),
];

