/**
 * JSON Schemas of the connection and cached-query service's answers for the
 * OpenAPI document: what was created (201), the status reports, and the
 * `{message, code}` error.
 */
import type { HttpMethod, JsonSchema, ResponseDoc, RestRoute } from '../rest-route.ts';
import { ServiceErrorCode } from './connection-service.mapping.ts';

const str: JsonSchema = { type: 'string' };
const int: JsonSchema = { type: 'integer' };
const nullable = (s: JsonSchema): JsonSchema => ({ anyOf: [s, { type: 'null' }] });
const obj = (properties: Record<string, JsonSchema>, optional: string[] = [], open = false): JsonSchema => ({
  type: 'object', required: Object.keys(properties).filter((k) => !optional.includes(k)), properties, additionalProperties: open,
});

const database = obj({ kind: str, host: str, port: int, database: nullable(str) });

/** createDatabaseConnection: the environment (201 created, 200 already there). */
export const environmentCreatedSchema = obj({
  id: str, name: str, status: str, created: { type: 'boolean' }, environmentId: str, connectionId: str, jobId: str, feed: str, database,
});

export const cachedQueryCreatedSchema = obj({
  id: str, name: { const: 'cached-query' }, status: str, mode: str, modeReason: nullable(str), environmentId: str, connectionId: str,
  jobId: nullable(str), sql: str, connectionCreated: { type: 'boolean' },
});

export const environmentDeletedSchema = obj({
  id: str, name: str, status: { const: 'deleted' }, environmentId: str, connectionId: str, jobId: nullable(str), cachedQueriesDeleted: int,
});

/** checkJobStatus and GET /environments/{id}: the capture and each cached query. */
export const environmentStatusSchema = obj({
  id: str, name: str, status: str, environmentId: str,
  connection: obj({ id: str, kind: str, host: str, port: int, database: nullable(str) }),
  capture: obj({
    jobId: str, name: str, status: str, phase: nullable(str), error: nullable(str), feed: nullable(str), changesCaptured: int, capturedSequence: nullable(str),
    tasks: { type: 'array', items: obj({ kind: str, name: str, status: str, error: nullable(str) }) },
  }),
  cachedQueries: {
    type: 'array',
    items: obj({ id: str, status: str, mode: str, version: int, refreshedAt: nullable(str), error: nullable(str), sql: str }),
  },
});

/** GET /cachedQueries/{id}: the query with its current result. */
export const cachedQuerySchema = obj({
  id: str, sql: str, environmentId: str, connectionId: str, jobId: nullable(str), mode: str, modeReason: nullable(str), status: str,
  error: nullable(str), columns: { type: 'array', items: str }, version: int, refreshedAt: nullable(str), rows: {}, lastSequence: nullable(str),
});

/** `{message, code}`; ENVIRONMENT_CONFLICT also names what holds the environment (connectionId, jobId). */
export const errorSchema: JsonSchema = obj(
  { message: str, code: { enum: [...Object.values(ServiceErrorCode), 'RATE_LIMITED'] }, connectionId: nullable(str), jobId: nullable(str) },
  ['connectionId', 'jobId'],
);

const err = (status: number, description: string): ResponseDoc => ({ status, description, schema: errorSchema });

/** Errors any route can answer besides its own. */
export function connectionServiceCommonResponses(route: RestRoute, method: HttpMethod): ResponseDoc[] {
  const body = method !== 'GET' && route.input !== 'query';
  return [
    err(400, 'Missing or invalid parameter, malformed body'),
    err(401, 'UNAUTHENTICATED: a valid API token is required (when tokens are defined)'),
    err(403, 'FORBIDDEN: the token\'s role does not allow this'),
    ...(body ? [err(413, 'PAYLOAD_TOO_LARGE')] : []),
    err(429, 'RATE_LIMITED (Retry-After)'),
    err(500, 'INTERNAL_ERROR'),
  ];
}

export const notFoundResponse = (example: string): ResponseDoc => ({ ...err(404, 'ENVIRONMENT_NOT_FOUND or NOT_FOUND'), example: { message: example, code: ServiceErrorCode.EnvironmentNotFound } });
export const invalidStateResponse: ResponseDoc = err(409, 'INVALID_STATE: the environment has no capture job');
