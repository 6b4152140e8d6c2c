/**
 * JSON Schemas of FATE-Flow's answers for the OpenAPI document: the
 * `{retcode, retmsg, data, jobId, meta}` envelope, with each route's `data`.
 * Failures of a request FATE could read are HTTP 200 with retcode != 0 and
 * no data; the machinery's own (malformed body, auth, rate limit, internal)
 * carry their HTTP status.
 */
import type { HttpMethod, JsonSchema, ResponseDoc, RestRoute } from '../rest-route.ts';

const str: JsonSchema = { type: 'string' };
const int: JsonSchema = { type: 'integer' };
const arr = (items: JsonSchema = {}): JsonSchema => ({ type: 'array', items });
const object = (properties: Record<string, JsonSchema> = {}, required: string[] = Object.keys(properties)): JsonSchema => ({ type: 'object', required, properties });

/** The envelope around `data` (present on success only). */
export const envelopeSchema = (data: JsonSchema = {}): JsonSchema => ({
  type: 'object', required: ['retcode', 'retmsg'], additionalProperties: false,
  properties: { retcode: int, retmsg: str, data, jobId: str, meta: {} },
});

/** A failure the machinery answers: `{retcode, retmsg}` with an HTTP error status. */
export const failureSchema: JsonSchema = {
  type: 'object', required: ['retcode', 'retmsg'], additionalProperties: false, properties: { retcode: int, retmsg: str },
};

const modelInfo = object({ model_id: str, model_version: str });
export const jobStartedData = object({ job_id: str, namespace: str, table_name: str, model_info: modelInfo, board_url: str, logs_directory: str }, ['job_id', 'model_info']);
export const submitData = object({ job_id: str, model_info: modelInfo, board_url: str, logs_directory: str });
export const stopData = object({ job_id: str, status: str });
export const jobListData = arr(object({ f_job_id: str, f_status: str, f_dsl: {}, f_runtime_conf: {} }));
export const jobConfigData = object({ job_id: str, dsl: {}, runtime_conf: {}, train_runtime_conf: {}, model_info: modelInfo });
export const jobLogData = object({ job_id: str, logs: arr(object({ at: str, level: str, message: str })), lines: arr(str) });
export const taskListData = arr(object({ f_job_id: str, f_component_name: str, f_component_module: str, f_task_id: str, f_status: str }));
export const dataViewData = object({ job_id: str, status: str, progress: {}, roles: {}, partner: {}, dataset: object({ input: {}, output: {} }), components: arr(object({ component_name: str, module: str, status: str })), model_summary: {} }, ['job_id', 'status', 'dataset', 'components']);
/** {namespace: {name: {data, meta}}} */
export const allMetricsData: JsonSchema = { type: 'object', additionalProperties: { type: 'object', additionalProperties: object({ data: {}, meta: {} }) } };
/** {namespace: [metric names]} */
export const metricNamesData: JsonSchema = { type: 'object', additionalProperties: arr(str) };
export const metricData = arr();
export const parametersData = object({ module: str }, ['module']);
export const outputModelData = object({ definition: {}, state: {} });
export const outputData = arr(arr());
export const dependencyData: JsonSchema = { type: 'object' };
export const modelLoadData = object({ namespace: str, name: str, version: str, status: { const: 'loaded' }, components: arr(str), create_time: str });
export const modelOnlineData = object({ job_id: str, namespace: str, name: str, version: str, status: str });
export const modelVersionsData = arr(object({ namespace: str, name: str, version: str, job_id: {}, create_time: { type: 'number' }, create_date: str, dsl: {}, runtime_conf: {} }, ['namespace', 'name', 'version']));
export const tableInfoData = object({ table_name: str, namespace: str, exist: { enum: [0, 1] }, count: int, partition: {}, schema: { anyOf: [{ type: 'object' }, { type: 'null' }] }, address: {} }, ['table_name', 'namespace', 'exist', 'count', 'schema']);

const failure = (status: number, description: string): ResponseDoc => ({ status, description, schema: failureSchema });

/** What every route can answer besides its envelope. */
export function fateFlowCommonResponses(route: RestRoute, method: HttpMethod): ResponseDoc[] {
  const body = method !== 'GET' && route.input !== 'query';
  return [
    ...(body ? [failure(400, 'Malformed body (retcode 101)')] : []),
    failure(401, 'A valid API token is required (retcode 100)'),
    failure(403, 'The token\'s role does not allow this (retcode 100)'),
    ...(body ? [failure(413, 'Body too large (retcode 101)')] : []),
    failure(429, 'Rate limited (Retry-After)'),
    failure(500, 'Internal error (retcode 100)'),
  ];
}
