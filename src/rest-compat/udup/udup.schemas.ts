/**
 * JSON Schemas of Udup's answers (Nomad-style models as udup.mapping.ts
 * writes them), for the OpenAPI document. Errors are plain text.
 */
import type { JsonSchema, ResponseDoc, RestRoute, HttpMethod } from '../rest-route.ts';

const int: JsonSchema = { type: 'integer' };
const str: JsonSchema = { type: 'string' };
const bool: JsonSchema = { type: 'boolean' };
const obj = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: 'object', required: Object.keys(properties), properties, additionalProperties: false, ...extra,
});

export const UDUP_STATUSES = ['pending', 'running', 'pause', 'dead', 'complete'];

/** Register, update, deregister, pause, resume: Udup's JobResponse. */
export const writeSchema = obj({ Index: int, KnownLeader: bool, LastContact: int, Success: bool });

export const jobStubSchema = obj({
  ID: int, Name: str, Type: str, Status: { enum: UDUP_STATUSES }, StatusDescription: str, CreateIndex: int, ModifyIndex: int, JobModifyIndex: int,
});

const connectionConfig = obj({ Host: str, Port: int, User: str, Password: { const: '*' } });
/** dtle's table list: a table may carry `Where`, its row filter. */
const replicateDb: JsonSchema = {
  type: 'array',
  items: obj({ TableSchema: str, Tables: { type: 'array', items: obj({ TableName: str, Where: str }, { required: ['TableName'] }) } }),
};
const taskConfig: JsonSchema = {
  type: 'object', required: ['Gtid', 'ParallelWorkers', 'ConnectionConfig'],
  properties: {
    Gtid: str, ParallelWorkers: int, ReplChanBufferSize: int, MsgBytesLimit: int, MsgsLimit: int, BytesLimit: int,
    ReplicateDoDb: replicateDb,
    ReplicateIgnoreDb: replicateDb,
    ConnectionConfig: connectionConfig,
  },
  additionalProperties: false,
};
const taskSchema = obj({ Type: { enum: ['Src', 'Dest'] }, NodeId: str, NodeName: str, Driver: str, Config: taskConfig, Leader: bool, Constraints: { type: 'null' } });

/** GET /v1/job/{id}: Udup's models.Job; passwords are "*". */
export const jobSchema = obj({
  Region: str, ID: int, Name: str, Type: str, Datacenters: { type: 'array', items: str }, Constraints: { type: 'null' },
  Tasks: { type: 'array', items: taskSchema }, Status: { enum: UDUP_STATUSES }, StatusDescription: str, EnforceIndex: bool,
  CreateIndex: int, ModifyIndex: int, JobModifyIndex: int,
});

export const nodeStubSchema = obj({ ID: str, Datacenter: str, Name: str, Status: str, StatusDescription: str, CreateIndex: int, ModifyIndex: int });

export const nodeSchema = obj({
  ID: str, Datacenter: str, Name: str, HTTPAddr: str, Attributes: { type: 'object', additionalProperties: str },
  Status: str, StatusDescription: str, StatusUpdatedAt: int, CreateIndex: int, ModifyIndex: int,
});

export const membersSchema = obj({
  ServerName: str, ServerRegion: str, ServerDC: str,
  Members: {
    type: 'array',
    items: obj({
      Name: str, Addr: str, Port: int, Tags: { type: 'object', additionalProperties: str }, Status: str,
      ProtocolMin: int, ProtocolMax: int, ProtocolCur: int, DelegateMin: int, DelegateMax: int, DelegateCur: int,
    }),
  },
});

/** "host:port" */
export const addressSchema: JsonSchema = { type: 'string', pattern: '^.+:\\d+$' };

/** Every Udup error: a plain-text message. */
export const textSchema: JsonSchema = { type: 'string' };

const text = (status: number, description: string): ResponseDoc => ({ status, description, contentType: 'text/plain', schema: textSchema });

/** Errors any route can answer (plain text): malformed input, auth, rate limit, internal. */
export function udupCommonResponses(route: RestRoute, method: HttpMethod): ResponseDoc[] {
  const body = route.input !== 'query' && method !== 'GET';
  return [
    ...(body || route.longPoll ? [text(400, body ? 'Malformed body or invalid job' : 'Invalid index or wait')] : []),
    text(401, 'A valid API token is required (when tokens are defined)'),
    text(403, 'The token\'s role does not allow this'),
    ...(body ? [text(413, 'Body too large')] : []),
    text(429, 'Rate limited (Retry-After)'),
    text(500, 'internal error'),
    text(503, 'Shutting down'),
  ];
}
