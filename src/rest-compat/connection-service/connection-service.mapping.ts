/**
 * The Debezium-style connection service's vocabulary: parameter names,
 * error codes with their HTTP statuses, and the translation of GraphQL
 * errors into `{message, code}` (see docs/compat.md, "Connection and
 * cached-query service").
 */
import type { GraphQLErrorShape } from '../executor.ts';
import { RestError, type RestRequest, type RestResponse } from '../rest-route.ts';

export const Param = {
  ConnectionString: 'connectionString',
  EnvironmentId: 'environmentId',
  Schema: 'schema',
  SqlQuery: 'sqlQuery',
} as const;

/** Every error code this API answers, with its HTTP status. */
export enum ServiceErrorCode {
  MissingParameter = 'MISSING_PARAMETER',
  MalformedBody = 'MALFORMED_BODY',
  InvalidConnectionString = 'INVALID_CONNECTION_STRING',
  InvalidEnvironmentId = 'INVALID_ENVIRONMENT_ID',
  InvalidParameter = 'INVALID_PARAMETER',
  SqlSyntax = 'SQL_SYNTAX',
  MultipleStatements = 'MULTIPLE_STATEMENTS',
  DdlNotAllowed = 'DDL_NOT_ALLOWED',
  NotASelect = 'NOT_A_SELECT',
  SideEffectFunction = 'SIDE_EFFECT_FUNCTION',
  SelectWrites = 'SELECT_WRITES',
  UnknownTable = 'UNKNOWN_TABLE',
  UnknownColumn = 'UNKNOWN_COLUMN',
  InvalidPrismaSchema = 'INVALID_PRISMA_SCHEMA',
  SourceRejected = 'SOURCE_REJECTED',
  Unauthenticated = 'UNAUTHENTICATED',
  Forbidden = 'FORBIDDEN',
  NotFound = 'NOT_FOUND',
  EnvironmentNotFound = 'ENVIRONMENT_NOT_FOUND',
  EnvironmentConflict = 'ENVIRONMENT_CONFLICT',
  InvalidState = 'INVALID_STATE',
  MethodNotAllowed = 'METHOD_NOT_ALLOWED',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  ConnectionFailed = 'CONNECTION_FAILED',
  SourceNotReady = 'SOURCE_NOT_READY',
  Internal = 'INTERNAL_ERROR',
}

export const STATUS_OF: Record<ServiceErrorCode, number> = {
  [ServiceErrorCode.MissingParameter]: 400, [ServiceErrorCode.MalformedBody]: 400, [ServiceErrorCode.InvalidConnectionString]: 400,
  [ServiceErrorCode.InvalidEnvironmentId]: 400, [ServiceErrorCode.InvalidParameter]: 400, [ServiceErrorCode.SqlSyntax]: 400,
  [ServiceErrorCode.MultipleStatements]: 400, [ServiceErrorCode.DdlNotAllowed]: 400, [ServiceErrorCode.NotASelect]: 400,
  [ServiceErrorCode.SideEffectFunction]: 400, [ServiceErrorCode.SelectWrites]: 400, [ServiceErrorCode.UnknownTable]: 400,
  [ServiceErrorCode.UnknownColumn]: 400, [ServiceErrorCode.InvalidPrismaSchema]: 400, [ServiceErrorCode.SourceRejected]: 400,
  [ServiceErrorCode.Unauthenticated]: 401, [ServiceErrorCode.Forbidden]: 403, [ServiceErrorCode.NotFound]: 404,
  [ServiceErrorCode.EnvironmentNotFound]: 404, [ServiceErrorCode.EnvironmentConflict]: 409, [ServiceErrorCode.InvalidState]: 409,
  [ServiceErrorCode.MethodNotAllowed]: 405, [ServiceErrorCode.PayloadTooLarge]: 413, [ServiceErrorCode.ConnectionFailed]: 422,
  [ServiceErrorCode.SourceNotReady]: 422, [ServiceErrorCode.Internal]: 500,
};

export function errorResponse(code: ServiceErrorCode, message: string): RestResponse {
  return { status: STATUS_OF[code], json: { message, code } };
}

const REASONS = new Set<string>(Object.values(ServiceErrorCode));

/** A GraphQL error as `{message, code}`: the refusal reason when there is one, else the error class. */
export function graphqlErrorResponse(errors: GraphQLErrorShape[]): RestResponse {
  const e = errors[0]!;
  const ext = e.extensions ?? {};
  const reason = typeof ext.reason === 'string' ? ext.reason : undefined;
  const field = typeof ext.field === 'string' ? ext.field : undefined;
  let code: ServiceErrorCode;
  switch (ext.code) {
    case 'BAD_USER_INPUT':
      code = reason && REASONS.has(reason) ? reason as ServiceErrorCode
        : field === Param.ConnectionString ? ServiceErrorCode.InvalidConnectionString
          : field === Param.EnvironmentId ? ServiceErrorCode.InvalidEnvironmentId : ServiceErrorCode.InvalidParameter;
      break;
    case 'NOT_FOUND': code = ext.what === 'environment' ? ServiceErrorCode.EnvironmentNotFound : ServiceErrorCode.NotFound; break;
    case 'CONFLICT': code = ServiceErrorCode.EnvironmentConflict; break;
    case 'INVALID_STATE': code = ServiceErrorCode.InvalidState; break;
    case 'CONNECTION_FAILED': code = ServiceErrorCode.ConnectionFailed; break;
    case 'SOURCE_NOT_READY': code = ServiceErrorCode.SourceNotReady; break;
    case 'UNAUTHENTICATED': code = ServiceErrorCode.Unauthenticated; break;
    case 'FORBIDDEN': code = ServiceErrorCode.Forbidden; break;
    case 'GRAPHQL_VALIDATION_FAILED': case 'PARAMETER_INVALID': code = ServiceErrorCode.InvalidParameter; break;
    default: code = ServiceErrorCode.Internal;
  }
  const res = errorResponse(code, code === ServiceErrorCode.Internal ? 'internal error' : e.message);
  if (code === ServiceErrorCode.EnvironmentConflict && (ext.connectionId || ext.jobId)) {
    res.json = { ...(res.json as object), connectionId: ext.connectionId ?? null, jobId: ext.jobId ?? null };
  }
  return res;
}

/** A required string parameter of the body (form or JSON). */
export function required(req: RestRequest, name: string): string {
  const v = req.input[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (typeof s !== 'string' || s.trim() === '') throw new RestError(400, `${name} is required`, ServiceErrorCode.MissingParameter);
  return s;
}

export function optional(req: RestRequest, name: string): string | undefined {
  const v = req.input[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' && s.trim() !== '' ? s : undefined;
}
