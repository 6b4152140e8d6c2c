/**
 * The authorization matrix: every GraphQL root field and every REST route
 * with the weakest role allowed to run it. docs/security.md carries the same
 * tables (renderMatrix(); the test checks the doc matches), and
 * authz-matrix.test.ts checks the gateway against them.
 *
 * Roles, weakest first: anonymous (no token while tokens exist) < reader <
 * operator < admin. A role may do everything a weaker one may.
 */
export type MatrixRole = 'anonymous' | 'reader' | 'operator' | 'admin';
export const ROLES: MatrixRole[] = ['anonymous', 'reader', 'operator', 'admin'];

/** GraphQL root fields -> weakest role. Over HTTP and graphql-ws, a missing token is refused before any field runs (anonymous: nothing). */
export const GRAPHQL_MATRIX: Record<'query' | 'mutation' | 'subscription', Record<string, MatrixRole>> = {
  query: {
    version: 'reader', viewer: 'reader', nodes: 'reader', jobs: 'reader', job: 'reader', connections: 'reader', connection: 'reader',
    changes: 'reader', feeds: 'reader', clusters: 'reader', cluster: 'reader', cachedQuery: 'reader', cachedQueries: 'reader', checkJobStatus: 'reader',
    pipelines: 'reader', pipeline: 'reader', pipelineTasks: 'reader', pipelineDependency: 'reader', componentMetrics: 'reader', componentOutputs: 'reader',
    componentState: 'reader', dataTable: 'reader', modelVersions: 'reader', sinks: 'reader', sink: 'reader', sinkDeadLetters: 'reader',
  },
  mutation: {
    runNoop: 'operator', createConnection: 'operator', testConnection: 'operator', deleteConnection: 'operator',
    createJob: 'operator', updateJob: 'operator', snapshotTables: 'operator', addTables: 'operator', removeTables: 'operator', verifyJob: 'operator', pauseJob: 'operator', resumeJob: 'operator', stopJob: 'operator', deleteJob: 'operator',
    applyCluster: 'operator', releaseCluster: 'operator', startCluster: 'operator', stopCluster: 'operator', restartCluster: 'operator',
    createCluster: 'admin', deleteCluster: 'admin',
    createDatabaseConnection: 'operator', createCachedQuery: 'operator', deleteDatabaseConnection: 'operator',
    submitPipeline: 'operator', stopPipeline: 'operator', uploadData: 'operator', createDataTable: 'operator', downloadData: 'operator', loadModel: 'operator', onlineModel: 'operator',
    createSink: 'operator', pauseSink: 'operator', resumeSink: 'operator', deleteSink: 'operator', replaySinkDeadLetters: 'operator', dropSinkDeadLetters: 'operator',
  },
  subscription: { taskEvents: 'reader', jobEvents: 'reader', changes: 'reader', clusterEvents: 'reader', cachedQueryResult: 'reader', sinkEvents: 'reader' },
};

export interface RestEntry {
  api: 'udup' | 'cello' | 'connection-service' | 'changeserver' | 'fate-flow' | 'gateway';
  method: string;
  /** `{job}` is replaced by a job the test creates, `{feed}` by a feed name. */
  path: string;
  role: MatrixRole;
  body?: Record<string, unknown>;
  note?: string;
}

const J = 'udup';
const C = 'cello';
const S = 'connection-service';
const F = 'fate-flow';
const fate = (path: string, role: MatrixRole, body: Record<string, unknown> = { job_id: 'nope' }): RestEntry => ({ api: F, method: 'POST', path, role, body });

export const REST_MATRIX: RestEntry[] = [
  { api: 'gateway', method: 'GET', path: '/health', role: 'anonymous' },
  { api: 'gateway', method: 'GET', path: '/ready', role: 'anonymous' },
  { api: 'gateway', method: 'GET', path: '/metrics', role: 'anonymous', note: 'counters and queue depths only; no secrets (checked by the secrets test)' },
  { api: 'gateway', method: 'GET', path: '/admin/queues', role: 'admin', note: 'bull-board' },
  { api: 'gateway', method: 'GET', path: '/', role: 'anonymous', note: 'landing page: links only, no data' },
  { api: 'gateway', method: 'GET', path: '/docs/types.md', role: 'anonymous', note: 'the repository docs, as text' },

  { api: J, method: 'POST', path: '/v1/jobs', role: 'operator', body: { Name: 'authz-new', Tasks: [] } },
  { api: J, method: 'GET', path: '/v1/jobs', role: 'reader' },
  { api: J, method: 'GET', path: '/v1/job/{job}', role: 'reader' },
  { api: J, method: 'PUT', path: '/v1/job/{job}', role: 'operator', body: { Name: '{job}', Tasks: [{ Type: 'Src', Config: { ParallelWorkers: 2, ConnectionConfig: { Host: '127.0.0.1', Port: '{mariaPort}', User: 'root', Password: '' } } }, { Type: 'Dest', Config: { ConnectionConfig: { Host: '127.0.0.1', Port: '{mariaPort}', User: 'root', Password: '' } } }] } },
  { api: J, method: 'DELETE', path: '/v1/job/{job}', role: 'operator' },
  { api: J, method: 'POST', path: '/v1/job/{job}/pause', role: 'operator' },
  { api: J, method: 'POST', path: '/v1/job/{job}/resume', role: 'operator' },
  { api: J, method: 'GET', path: '/v1/nodes', role: 'reader' },
  { api: J, method: 'GET', path: '/v1/node/nope', role: 'reader' },
  { api: J, method: 'GET', path: '/v1/members', role: 'reader' },
  { api: J, method: 'GET', path: '/v1/leader', role: 'anonymous', note: 'no operation: this gateway\'s address' },
  { api: J, method: 'GET', path: '/v1/peers', role: 'anonymous', note: 'no operation: this gateway\'s address' },
  { api: J, method: 'GET', path: '/v1/openapi.json', role: 'anonymous', note: 'documentation' },

  { api: C, method: 'POST', path: '/v2/cluster_op?action=apply', role: 'operator', body: { user_id: '{self}' } },
  { api: C, method: 'POST', path: '/v2/cluster_op?action=release&cluster_id=nope', role: 'operator' },
  { api: C, method: 'POST', path: '/v2/cluster_op?action=start&cluster_id=nope', role: 'operator' },
  { api: C, method: 'POST', path: '/v2/cluster_op?action=stop&cluster_id=nope', role: 'operator' },
  { api: C, method: 'POST', path: '/v2/cluster_op?action=restart&cluster_id=nope', role: 'operator' },
  { api: C, method: 'GET', path: '/v2/clusters', role: 'reader' },
  { api: C, method: 'GET', path: '/v2/cluster/nope', role: 'reader' },
  { api: C, method: 'POST', path: '/v2/cluster_apply', role: 'operator', body: { user_id: '{self}' } },
  { api: C, method: 'POST', path: '/v2/cluster_release?cluster_id=nope', role: 'operator' },
  { api: C, method: 'GET', path: '/v2/openapi.json', role: 'anonymous', note: 'documentation' },

  { api: S, method: 'POST', path: '/createDatabaseConnection', role: 'operator', body: { connectionString: 'postgres://u:p@127.0.0.1:1/db', environmentId: 'authz-env' } },
  { api: S, method: 'POST', path: '/createCachedQuery', role: 'operator', body: { environmentId: 'authz-none', sqlQuery: 'SELECT 1' } },
  { api: S, method: 'POST', path: '/deleteDatabaseConnection', role: 'operator', body: { environmentId: 'authz-none' } },
  { api: S, method: 'POST', path: '/checkJobStatus', role: 'reader', body: { environmentId: 'authz-none' } },
  { api: S, method: 'GET', path: '/environments/authz-none', role: 'reader' },
  { api: S, method: 'GET', path: '/cachedQueries/00000000-0000-0000-0000-000000000000', role: 'reader' },
  { api: S, method: 'GET', path: '/connection-service/openapi.json', role: 'anonymous', note: 'documentation' },

  { api: 'changeserver', method: 'GET', path: '/changes?scope=a', role: 'reader' },
  { api: 'changeserver', method: 'GET', path: '/feeds/{feed}/changes?scope=a', role: 'reader' },

  fate('/v1/data/upload', 'operator', { file: '/nonexistent.csv', namespace: 'nope', table_name: 't' }),
  fate('/v1/data/download', 'operator', { output_path: '/tmp/authz-none.csv', namespace: 'nope', table_name: 't' }),
  fate('/v1/job/submit', 'operator', { job_dsl: {}, job_runtime_conf: {} }),
  fate('/v1/job/stop', 'operator'),
  fate('/v1/job/query', 'reader'),
  fate('/v1/job/config', 'reader'),
  fate('/v1/job/log', 'reader'),
  fate('/v1/job/task/query', 'reader'),
  fate('/v1/tracking/job/data_view', 'reader'),
  fate('/v1/tracking/component/metric/all', 'reader', { job_id: 'nope', component_name: 'c' }),
  fate('/v1/tracking/component/metrics', 'reader', { job_id: 'nope', component_name: 'c' }),
  fate('/v1/tracking/component/metric_data', 'reader', { job_id: 'nope', component_name: 'c', metric_namespace: 'n', metric_name: 'm' }),
  fate('/v1/tracking/component/parameters', 'reader', { job_id: 'nope', component_name: 'c' }),
  fate('/v1/tracking/component/output/model', 'reader', { job_id: 'nope', component_name: 'c' }),
  fate('/v1/tracking/component/output/data', 'reader', { job_id: 'nope', component_name: 'c' }),
  fate('/v1/pipeline/dag/dependency', 'reader'),
  fate('/v1/model/load', 'operator', { model: { namespace: 'authz', job_dsl: {} } }),
  fate('/v1/model/online', 'operator', { model: { namespace: 'authz-none' } }),
  fate('/v1/model/version', 'reader', { namespace: 'authz-none' }),
  fate('/v1/table/table_info', 'reader', { namespace: 'nope', table_name: 't' }),
  { api: F, method: 'POST', path: '/v1/table/table_info', role: 'operator', body: { create: true, namespace: 'nope', table_name: 't' }, note: 'with `create: true` (createDataTable)' },
  { api: F, method: 'GET', path: '/v1/fate-flow/openapi.json', role: 'anonymous', note: 'documentation' },
];

/** Ownership rules, as checked by the test (docs/security.md, "Ownership"). */
export const OWNERSHIP_RULES: string[] = [
  'Clusters: a non-admin token acts as the user named like the token. It sees free clusters and the ones it holds; a cluster held by another user is invisible (cluster(id) is null, actions on it are NOT_FOUND / Cello code 404).',
  'Clusters: applying for another user_id needs admin (FORBIDDEN otherwise); start, stop and restart of a free cluster need admin or holding it (FORBIDDEN).',
  'Clusters: admins see and act on every cluster, whoever holds it; create and delete need admin.',
  'Jobs, connections, feeds, cached queries and pipelines have no owner check: any operator may act on any of them, any reader may read them. A job\'s owner (the token name that created it) only decides placement on the clusters that owner holds.',
];

const mark = (r: MatrixRole, need: MatrixRole) => (ROLES.indexOf(r) >= ROLES.indexOf(need) ? 'yes' : '—');

/** The Markdown tables docs/security.md carries between its matrix markers. */
export function renderMatrix(): string {
  const lines: string[] = [];
  lines.push('| GraphQL | field | weakest role | anonymous | reader | operator | admin |', '|---|---|---|---|---|---|---|');
  for (const [root, fields] of Object.entries(GRAPHQL_MATRIX)) {
    for (const [name, role] of Object.entries(fields)) lines.push(`| ${root} | \`${name}\` | ${role} | ${ROLES.map((r) => mark(r, role)).join(' | ')} |`);
  }
  lines.push('', '| API | method | path | weakest role | anonymous | reader | operator | admin | note |', '|---|---|---|---|---|---|---|---|---|');
  for (const e of REST_MATRIX) lines.push(`| ${e.api} | ${e.method} | \`${e.path.replace(/\|/g, '\\|')}\` | ${e.role} | ${ROLES.map((r) => mark(r, e.role)).join(' | ')} | ${e.note ?? ''} |`);
  return lines.join('\n');
}
