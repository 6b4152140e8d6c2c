/**
 * FATE-Flow v1 vocabulary: retcodes, the `{retcode, retmsg, data, jobId,
 * meta}` envelope (absent parts left out, as FATE's get_json_result did),
 * GraphQL error -> retcode, request fields -> GraphQL variables, and
 * GraphQL answers -> FATE's `f_`-prefixed job and task records.
 */
import type { GraphQLErrorShape } from '../executor.ts';
import { RestError, type RestRequest, type RestResponse } from '../rest-route.ts';
import type { JobStatus } from '../../domain/job-model.ts';
import { FateStatus, fateJobStatus, fateTaskStatus } from './fate-flow.dialect.ts';

/** FATE-Flow entity RetCode. */
export enum RetCode {
  Success = 0,
  Exception = 100,
  ArgumentError = 101,
  DataError = 102,
  OperatingError = 103,
}

export function envelope(retcode: number, retmsg: string, parts: { data?: unknown; jobId?: string | null; meta?: unknown } = {}): RestResponse {
  const json: Record<string, unknown> = { retcode, retmsg };
  if (parts.data !== undefined && parts.data !== null) json.data = parts.data;
  if (parts.jobId) json.jobId = parts.jobId;
  if (parts.meta !== undefined && parts.meta !== null) json.meta = parts.meta;
  return { status: 200, json };
}

export const ok = (data?: unknown, parts: { retmsg?: string; jobId?: string | null; meta?: unknown } = {}) =>
  envelope(RetCode.Success, parts.retmsg ?? 'success', { data, jobId: parts.jobId, meta: parts.meta });

/** Thrown by hooks: answered 200 with this retcode, as FATE did for its own checks. */
export const fateError = (retcode: RetCode, message: string) => new RestError(200, message, retcode);

/** GraphQL error -> retcode: the service's category first, then its code. */
export function retcodeOf(e: GraphQLErrorShape): RetCode {
  const ext = e.extensions ?? {};
  switch (ext.category) {
    case 'data': return RetCode.DataError;
    case 'operating': return RetCode.OperatingError;
    case 'exception': return RetCode.Exception;
    default: break;
  }
  switch (ext.code) {
    case 'BAD_USER_INPUT': case 'PARAMETER_INVALID': case 'GRAPHQL_VALIDATION_FAILED': case 'GRAPHQL_PARSE_FAILED': return RetCode.ArgumentError;
    case 'NOT_FOUND': return RetCode.DataError;
    case 'INVALID_STATE': case 'CONFLICT': return RetCode.OperatingError;
    default: return RetCode.Exception;
  }
}

export function graphqlErrorResponse(errors: GraphQLErrorShape[]): RestResponse {
  const e = errors[0]!;
  const code = e.extensions?.code;
  if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN') {
    return { status: code === 'UNAUTHENTICATED' ? 401 : 403, json: { retcode: RetCode.Exception, retmsg: e.message } };
  }
  return envelope(retcodeOf(e), e.message);
}

// ---------------------------------------------------------------- input

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** The request's fields; FATE's `f_` prefixes are accepted too. */
export function fields(req: RestRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(req.input)) out[k.startsWith('f_') ? k.slice(2) : k] = v;
  return out;
}

export function required(req: RestRequest, ...names: string[]): void {
  const f = fields(req);
  const missing = names.filter((n) => f[n] === undefined || f[n] === null || f[n] === '');
  if (missing.length) throw fateError(RetCode.ArgumentError, `required parameters are missing: ${missing.join(', ')}`);
}

const str = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : typeof v === 'object' ? JSON.stringify(v) : String(v));
const int = (v: unknown, name: string) => {
  if (v === undefined || v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw fateError(RetCode.ArgumentError, `${name} must be a number`);
  return n;
};
const json = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : v);

/** Every /v1/job/query filter of the seed (plus component_name, task_id for tasks) -> PipelineFilterInput. */
export function filterOf(req: RestRequest): Record<string, unknown> {
  const f = fields(req);
  const isInit = f.is_initiator;
  const filter: Record<string, unknown> = {
    jobId: str(f.job_id), name: str(f.name), description: str(f.description), tag: str(f.tag), role: str(f.role),
    partyId: str(f.party_id), roles: json(f.roles), initiatorPartyId: str(f.initiator_party_id),
    isInitiator: isInit === undefined || isInit === null || isInit === '' ? undefined : isInit === true || isInit === 1 || isInit === '1' || isInit === 'true',
    dsl: json(f.dsl), runtimeConf: json(f.runtime_conf), runIp: str(f.run_ip), status: str(f.status),
    currentSteps: json(f.current_steps), currentTasks: json(f.current_tasks), progress: int(f.progress, 'progress'),
    createTime: int(f.create_time, 'create_time'), updateTime: int(f.update_time, 'update_time'), startTime: int(f.start_time, 'start_time'),
    endTime: int(f.end_time, 'end_time'), elapsed: int(f.elapsed, 'elapsed'),
    componentName: str(f.component_name), taskId: str(f.task_id),
  };
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined));
}

export function objectField(req: RestRequest, name: string): Record<string, unknown> | undefined {
  let v = fields(req)[name];
  if (typeof v === 'string') { try { v = JSON.parse(v); } catch { /* not JSON */ } }
  return isObject(v) ? v : undefined;
}

// ---------------------------------------------------------------- output

export const PIPELINE_FIELDS = `id jobId name kind description tag role partyId roles initiatorRole initiatorPartyId isInitiator dsl runtimeConf
  runIp status statusReason error currentSteps currentTasks progress createTime updateTime startTime endTime elapsed`;
export const TASK_FIELDS = `taskId jobId name module status upstream outputs parameters role partyId runIp attempts error progress
  createTime updateTime startTime endTime elapsed`;

export interface GqlPipeline {
  id: string; jobId: string; name: string; kind: string; description: string; tag: string; role: string; partyId: string; roles: unknown;
  initiatorRole: string; initiatorPartyId: string; isInitiator: boolean; dsl: unknown; runtimeConf: unknown; runIp: string; status: string;
  statusReason: string | null; error: string | null; currentSteps: string[]; currentTasks: string[]; progress: number;
  createTime: number; updateTime: number; startTime: number | null; endTime: number | null; elapsed: number | null;
}
export interface GqlTask {
  taskId: string; jobId: string; name: string; module: string; status: string; upstream: string[]; outputs: string[];
  parameters: Record<string, unknown>; role: string; partyId: string; runIp: string | null; attempts: number; error: string | null;
  progress: Record<string, unknown>; createTime: number; updateTime: number; startTime: number | null; endTime: number | null; elapsed: number | null;
}

/** A pipeline's status (GraphQL's JobStatus and reason) in FATE's words. */
export function pipelineFateStatus(p: { status: string; statusReason?: string | null }): FateStatus {
  return fateJobStatus(p.status.toLowerCase() as JobStatus, p.statusReason);
}

/** A job as FATE's Job.to_dict() wrote it. */
export function fateJob(p: GqlPipeline): Record<string, unknown> {
  const status = pipelineFateStatus(p);
  return {
    f_job_id: p.jobId, f_name: p.name, f_description: p.description, f_tag: p.tag, f_dsl: p.dsl, f_runtime_conf: p.runtimeConf,
    f_runtime_conf_on_party: p.runtimeConf, f_train_runtime_conf: {}, f_roles: p.roles, f_initiator_role: p.initiatorRole,
    f_initiator_party_id: p.initiatorPartyId, f_status: status, f_status_code: null, f_role: p.role, f_party_id: p.partyId,
    f_is_initiator: p.isInitiator, f_progress: p.progress, f_current_steps: p.currentSteps, f_current_tasks: p.currentTasks,
    f_run_ip: p.runIp, f_create_time: p.createTime, f_update_time: p.updateTime, f_start_time: p.startTime, f_end_time: p.endTime,
    f_elapsed: p.elapsed, f_cancel_signal: status === FateStatus.Canceled, f_error: p.error,
  };
}

/** A task as FATE's Task.to_dict() wrote it. */
export function fateTask(t: GqlTask, job?: GqlPipeline): Record<string, unknown> {
  const status = fateTaskStatus(t.status);
  return {
    f_job_id: t.jobId, f_component_name: t.name, f_component_module: t.module, f_task_id: t.taskId, f_task_version: 0,
    f_initiator_role: job?.initiatorRole ?? t.role, f_initiator_party_id: job?.initiatorPartyId ?? t.partyId, f_federated_mode: 'SINGLE',
    f_role: t.role, f_party_id: t.partyId, f_run_on_this_party: true, f_run_ip: t.runIp, f_party_status: status, f_status: status,
    f_component_parameters: { module: t.module, [`${t.module}Param`]: t.parameters }, f_upstream: t.upstream, f_attempts: t.attempts,
    f_error: t.error, f_progress: t.progress, f_start_time: t.startTime, f_end_time: t.endTime, f_elapsed: t.elapsed,
    f_create_time: t.createTime, f_update_time: t.updateTime,
  };
}

/** FATE's model_info: model_id from the roles, model_version = the job id. */
export function modelInfo(p: GqlPipeline): { model_id: string; model_version: string } {
  const roles = isObject(p.roles) ? p.roles : {};
  const parts = Object.keys(roles).sort().map((r) => `${r}-${([] as unknown[]).concat(roles[r] ?? []).join('_')}`);
  return { model_id: `${parts.join('#') || `${p.role}-${p.partyId}`}#model`, model_version: p.jobId };
}

/** A row object -> values in header order (FATE's output data lines). */
export const rowValues = (header: string[], row: Record<string, unknown>) => header.map((h) => row[h] ?? null);
