/**
 * JSON Schemas of Cello's answers for the OpenAPI document: the
 * `{code, data, error, status}` envelope around clusters.
 */
import type { JsonSchema, ResponseDoc } from '../rest-route.ts';

const str: JsonSchema = { type: 'string' };
const int: JsonSchema = { type: 'integer' };

/** What apply answers: the document's keys. */
const appliedProperties: Record<string, JsonSchema> = {
  api_url: str, consensus_mode: str, consensus_plugin: str, daemon_url: str, id: str, name: str, size: int, user_id: str,
};
export const appliedClusterSchema: JsonSchema = { type: 'object', required: Object.keys(appliedProperties), properties: appliedProperties, additionalProperties: false };

const clusterProperties: Record<string, JsonSchema> = {
  ...appliedProperties,
  status: { enum: ['running', 'stopped'] }, health: str, create_ts: str, apply_ts: str, release_ts: str, release_status: str,
  release_progress: { type: 'number' }, worker_api: str, queue: str, workers: { type: 'array', items: str },
};
export const clusterSchema: JsonSchema = { type: 'object', required: Object.keys(clusterProperties), properties: clusterProperties, additionalProperties: false };

/** HTTP 200 `{code: 200, data, error: "", status: "OK"}`. */
export const okSchema = (data: JsonSchema): JsonSchema => ({
  type: 'object', required: ['code', 'data', 'error', 'status'], additionalProperties: false,
  properties: { code: { const: 200 }, data, error: { const: '' }, status: { const: 'OK' } },
});

export const EMPTY_DATA: JsonSchema = { const: '' };

/** Any failure: `{code, data, error, status: "FAIL"}`, the real reason in `code` (400, 401, 403, 404, 429, 500). */
export const failSchema: JsonSchema = {
  type: 'object', required: ['code', 'data', 'error', 'status'], additionalProperties: false,
  properties: { code: int, data: {}, error: str, status: { const: 'FAIL' } },
};

/** Failures any route can answer besides its own: rate limit and internal faults. */
export function celloCommonResponses(): ResponseDoc[] {
  return [
    { status: 400, description: 'Failed; `code` says why (400 bad request, 401, 403, 404)', schema: failSchema },
    { status: 429, description: 'Rate limited (Retry-After); code 429', schema: failSchema },
    { status: 500, description: 'Internal error; code 500', schema: failSchema },
  ];
}
