/**
 * The Debezium-style connection and cached-query service (seed 002) as a
 * route table: four POST endpoints taking form-encoded (curl -d) or JSON
 * bodies, answering 201 Created with what was created, its id and status;
 * plus two reads the Location headers point at.
 */
import { defineRoute, type ResponseDoc, type RestRoute } from '../rest-route.ts';
import { Param, ServiceErrorCode, optional, required } from './connection-service.mapping.ts';
import {
  cachedQueryCreatedSchema, cachedQuerySchema, environmentCreatedSchema, environmentDeletedSchema, environmentStatusSchema, errorSchema, invalidStateResponse, notFoundResponse,
} from './connection-service.schemas.ts';

const ENV_FIELDS = 'environmentId created feed connection { id kind host port database } job { id name status }';
const CQ_FIELDS = 'id sql environmentId connectionId jobId mode modeReason status error columns version refreshedAt';

export const ConnectionServiceOperation = {
  CreateConnection: `mutation CreateDatabaseConnection($cs: String!, $env: String!) { createDatabaseConnection(connectionString: $cs, environmentId: $env) { ${ENV_FIELDS} } }`,
  CreateCachedQuery: `mutation CreateCachedQuery($cs: String, $env: String!, $schema: String, $sql: String!) { createCachedQuery(connectionString: $cs, environmentId: $env, schema: $schema, sqlQuery: $sql) { cachedQuery { ${CQ_FIELDS} } connection { ${ENV_FIELDS} } } }`,
  DeleteConnection: 'mutation DeleteDatabaseConnection($cs: String, $env: String!) { deleteDatabaseConnection(connectionString: $cs, environmentId: $env) { environmentId connectionId jobId cachedQueries } }',
  Status: 'query CheckJobStatus($env: String!) { checkJobStatus(environmentId: $env) }',
  CachedQuery: `query CachedQuery($id: ID!) { cachedQuery(id: $id) { ${CQ_FIELDS} rows lastSequence } }`,
} as const;

interface EnvData { environmentId: string; created: boolean; feed: string; connection: { id: string; kind: string; host: string; port: number; database: string | null }; job: { id: string; name: string; status: string } }
interface CqData { id: string; sql: string; environmentId: string; connectionId: string; jobId: string | null; mode: string; modeReason: string | null; status: string; error: string | null; columns: string[]; version: number; refreshedAt: string | null }

const envPath = (env: string) => `/environments/${encodeURIComponent(env)}`;
const cqPath = (id: string) => `/cachedQueries/${encodeURIComponent(id)}`;

const SAMPLE_CS = 'postgres://user:password@db.example:5432/shop';
const ERR = (status: number, code: ServiceErrorCode, message: string): ResponseDoc => ({ status, description: code, example: { message, code }, schema: errorSchema });
const COMMON_ERRORS = [
  ERR(400, ServiceErrorCode.MissingParameter, 'environmentId is required'),
  ERR(400, ServiceErrorCode.InvalidConnectionString, 'connectionString scheme "sqlserver" is not supported: use mysql, mariadb, postgres or postgresql'),
  ERR(401, ServiceErrorCode.Unauthenticated, 'a valid API token is required'),
];

const connectionBody = (d: EnvData) => ({
  id: d.connection.id, name: d.environmentId, status: d.job.status.toLowerCase(), created: d.created,
  environmentId: d.environmentId, connectionId: d.connection.id, jobId: d.job.id, feed: d.feed,
  database: { kind: d.connection.kind, host: d.connection.host, port: d.connection.port, database: d.connection.database },
});

export const connectionServiceRoutes: RestRoute[] = [
  defineRoute<{ createDatabaseConnection: EnvData }>({
    method: 'POST', path: '/createDatabaseConnection', input: 'any',
    summary: 'Connect a database and capture it into the feed named environmentId',
    description: 'Creates the connection and a subscribe job (capture only) whose feed is named environmentId. Repeating the call with the same database answers 200 with the existing ids (created: false); a different database under the same environmentId is 409 ENVIRONMENT_CONFLICT.',
    requestExample: { connectionString: SAMPLE_CS, environmentId: 'env-42' },
    responses: [
      { status: 201, description: 'Created', example: { id: 'a2c4…', name: 'env-42', status: 'running', created: true, environmentId: 'env-42', connectionId: 'a2c4…', jobId: '9f1e…', feed: 'env-42', database: { kind: 'POSTGRES', host: 'db.example', port: 5432, database: 'shop' } }, headers: { Location: 'Status of the environment' }, schema: environmentCreatedSchema },
      { status: 200, description: 'Already there with the same database (idempotent repeat)', headers: { Location: 'Status of the environment' }, schema: environmentCreatedSchema },
      ...COMMON_ERRORS, ERR(409, ServiceErrorCode.EnvironmentConflict, 'environmentId "env-42" already has a database connection to a different database: delete it first'),
      ERR(422, ServiceErrorCode.ConnectionFailed, 'cannot connect to postgres at db.example:5432: ...'),
    ],
    operation: ConnectionServiceOperation.CreateConnection,
    variables: (req) => ({ cs: required(req, Param.ConnectionString), env: required(req, Param.EnvironmentId) }),
    result: (data) => {
      const d = data.createDatabaseConnection;
      return { status: d.created ? 201 : 200, headers: { Location: envPath(d.environmentId) }, json: connectionBody(d) };
    },
  }),

  defineRoute<{ createCachedQuery: { cachedQuery: CqData; connection: EnvData } }>({
    method: 'POST', path: '/createCachedQuery', input: 'any',
    summary: 'Create a cached query kept fresh from the capture',
    description: 'sqlQuery must be one SELECT without side effects; its tables and columns are checked against the Prisma `schema` when given. Aggregates (COUNT, SUM, AVG, MIN, MAX with GROUP BY and WHERE over one table) are kept incrementally; other SELECTs are re-run on changes. Creates the environment\'s connection first when it does not exist.',
    requestExample: { connectionString: SAMPLE_CS, environmentId: 'env-42', schema: 'model Order {\n  id Int @id\n  status String\n  amount Decimal\n  @@map("orders")\n}', sqlQuery: 'SELECT status, count(*) FROM orders GROUP BY status' },
    responses: [
      { status: 201, description: 'Created', example: { id: '5d0b…', name: 'cached-query', status: 'pending', mode: 'incremental', modeReason: null, environmentId: 'env-42', connectionId: 'a2c4…', jobId: '9f1e…', sql: 'SELECT status, count(*) FROM orders GROUP BY status', connectionCreated: false }, headers: { Location: 'The cached query and its result' }, schema: cachedQueryCreatedSchema },
      ...COMMON_ERRORS,
      ERR(400, ServiceErrorCode.SideEffectFunction, 'sqlQuery calls pg_sleep(), which sleeps on the source: cached queries may only read'),
      ERR(400, ServiceErrorCode.UnknownColumn, 'sqlQuery names column "amout", which table "orders" (model Order) does not have in the Prisma schema'),
      ERR(404, ServiceErrorCode.EnvironmentNotFound, 'no database connection for environmentId "env-42": send connectionString or call createDatabaseConnection first'),
      ERR(422, ServiceErrorCode.ConnectionFailed, 'cannot connect to postgres at db.example:5432: ...'),
    ],
    operation: ConnectionServiceOperation.CreateCachedQuery,
    variables: (req) => ({ cs: optional(req, Param.ConnectionString) ?? null, env: required(req, Param.EnvironmentId), schema: optional(req, Param.Schema) ?? null, sql: required(req, Param.SqlQuery) }),
    result: (data) => {
      const q = data.createCachedQuery.cachedQuery;
      return {
        status: 201, headers: { Location: cqPath(q.id) },
        json: { id: q.id, name: 'cached-query', status: q.status, mode: q.mode.toLowerCase(), modeReason: q.modeReason, environmentId: q.environmentId, connectionId: q.connectionId, jobId: q.jobId, sql: q.sql, connectionCreated: data.createCachedQuery.connection.created },
      };
    },
  }),

  defineRoute<{ deleteDatabaseConnection: { environmentId: string; connectionId: string; jobId: string | null; cachedQueries: number } }>({
    method: 'POST', path: '/deleteDatabaseConnection', input: 'any',
    summary: 'Stop and remove the capture, its cached queries and the connection',
    description: 'Answers 201 like the original service. connectionString is optional; when given it must name the same database.',
    requestExample: { connectionString: SAMPLE_CS, environmentId: 'env-42' },
    responses: [
      { status: 201, description: 'Deleted', example: { id: 'a2c4…', name: 'env-42', status: 'deleted', environmentId: 'env-42', connectionId: 'a2c4…', jobId: '9f1e…', cachedQueriesDeleted: 2 }, schema: environmentDeletedSchema },
      ...COMMON_ERRORS, ERR(404, ServiceErrorCode.EnvironmentNotFound, 'no database connection for environmentId "env-42"'),
      ERR(409, ServiceErrorCode.EnvironmentConflict, 'connectionString names a different database than environmentId "env-42"\'s connection'),
    ],
    operation: ConnectionServiceOperation.DeleteConnection,
    variables: (req) => ({ cs: optional(req, Param.ConnectionString) ?? null, env: required(req, Param.EnvironmentId) }),
    result: (data) => {
      const d = data.deleteDatabaseConnection;
      return { status: 201, json: { id: d.connectionId, name: d.environmentId, status: 'deleted', environmentId: d.environmentId, connectionId: d.connectionId, jobId: d.jobId, cachedQueriesDeleted: d.cachedQueries } };
    },
  }),

  defineRoute<{ checkJobStatus: { environmentId: string; connection: { id: string }; capture: { status: string } } }>({
    method: 'POST', path: '/checkJobStatus', input: 'any',
    summary: 'Status of the capture (connector) and of each cached query',
    description: 'Answers 201 like the original service, with `status` the capture\'s job status.',
    requestExample: { connectionString: SAMPLE_CS, environmentId: 'env-42' },
    responses: [
      { status: 201, description: 'Status', example: { id: 'a2c4…', name: 'env-42', status: 'running', capture: { status: 'running' }, cachedQueries: [{ id: '5d0b…', status: 'active', mode: 'incremental', version: 3 }] }, headers: { Location: 'Status of the environment' }, schema: environmentStatusSchema },
      ...COMMON_ERRORS, ERR(404, ServiceErrorCode.EnvironmentNotFound, 'no database connection for environmentId "env-42"'), invalidStateResponse,
    ],
    operation: ConnectionServiceOperation.Status,
    variables: (req) => { optional(req, Param.ConnectionString); return { env: required(req, Param.EnvironmentId) }; },
    result: (data) => {
      const s = data.checkJobStatus;
      return { status: 201, headers: { Location: envPath(s.environmentId) }, json: { id: s.connection.id, name: s.environmentId, status: s.capture.status, ...s } };
    },
  }),

  defineRoute<{ checkJobStatus: { environmentId: string; connection: { id: string }; capture: { status: string } } }>({
    method: 'GET', path: '/environments/:environmentId', input: 'query',
    summary: 'Status of an environment (what checkJobStatus answers), as a plain read',
    params: [{ name: 'environmentId', in: 'path', required: true }],
    responses: [{ status: 200, description: 'Status of the capture and of each cached query', schema: environmentStatusSchema }, notFoundResponse('no database connection for environmentId "env-42"'), invalidStateResponse],
    operation: ConnectionServiceOperation.Status,
    variables: (req) => ({ env: req.params.environmentId }),
    result: (data) => ({ json: { id: data.checkJobStatus.connection.id, name: data.checkJobStatus.environmentId, status: data.checkJobStatus.capture.status, ...data.checkJobStatus } }),
  }),

  defineRoute<{ cachedQuery: (CqData & { rows: unknown; lastSequence: string | null }) | null }>({
    method: 'GET', path: '/cachedQueries/:id', input: 'query',
    summary: 'A cached query with its current result',
    params: [{ name: 'id', in: 'path', required: true }],
    responses: [{ status: 200, description: 'The cached query and its current result', schema: cachedQuerySchema }, ERR(404, ServiceErrorCode.NotFound, 'cached query 5d0b… not found')],
    operation: ConnectionServiceOperation.CachedQuery,
    variables: (req) => ({ id: req.params.id }),
    result: (data, req) => (data.cachedQuery
      ? { json: { ...data.cachedQuery, mode: data.cachedQuery.mode.toLowerCase() } }
      : { status: 404, json: { message: `cached query ${req.params.id} not found`, code: ServiceErrorCode.NotFound } }),
  }),
];
