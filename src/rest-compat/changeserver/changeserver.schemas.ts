/**
 * JSON Schemas of changeserver's answers for the OpenAPI document: the
 * ChangeList (JSON, or its protobuf twin by Accept) and the Error model.
 */
import type { JsonSchema, ResponseDoc } from '../rest-route.ts';
import { ChangeserverCode, MediaType } from './changeserver.mapping.ts';

const int: JsonSchema = { type: 'integer' };
const sequence: JsonSchema = { type: 'string', pattern: '^[0-9a-f]+\\.[0-9a-f]+\\.[0-9a-f]+$' };

/** A column: PostgreSQL's text of the value (null for SQL NULL) and the type OID. */
const valueSchema: JsonSchema = {
  type: 'object', required: ['value', 'type'], additionalProperties: false,
  properties: { value: { type: ['string', 'null'] }, type: int },
};
const rowSchema: JsonSchema = { type: 'object', additionalProperties: valueSchema };

const changeSchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['operation', 'table', 'sequence', 'commitSequence', 'changeSequence', 'commitIndex', 'txid', 'timestamp'],
  properties: {
    operation: { enum: [1, 2, 3], description: '1 insert, 2 update, 3 delete' },
    table: { type: 'string' }, sequence, commitSequence: int, changeSequence: int, commitIndex: int, txid: int,
    timestamp: { type: 'integer', description: 'Commit time, seconds since the Unix epoch' },
    newRow: rowSchema, oldRow: rowSchema,
  },
};

export const changeListSchema: JsonSchema = {
  type: 'object', required: ['firstSequence', 'lastSequence', 'changes'], additionalProperties: false,
  properties: { firstSequence: sequence, lastSequence: sequence, changes: { type: 'array', items: changeSchema } },
};

/** ChangeListPb (transicator.proto) as bytes. */
export const changeListProtoSchema: JsonSchema = { type: 'string', contentMediaType: MediaType.Protobuf, description: 'common.ChangeListPb' };

export const errorSchema: JsonSchema = {
  type: 'object', required: ['code', 'error'], additionalProperties: false,
  properties: { code: { enum: Object.values(ChangeserverCode) }, error: { type: 'string' }, description: { type: 'string' } },
};

const err = (status: number, description: string): ResponseDoc => ({ status, description, schema: errorSchema });

export const changesResponses: ResponseDoc[] = [
  {
    status: 200, description: 'ChangeList: JSON, or protobuf with Accept: application/transicator+protobuf', contentType: MediaType.Json, schema: changeListSchema,
    alternatives: [{ contentType: MediaType.Protobuf, schema: changeListProtoSchema }],
  },
  err(400, 'MISSING_PARAMETER, PARAMETER_INVALID or SNAPSHOT_TOO_OLD'),
  err(401, 'UNAUTHENTICATED (when API tokens are defined)'),
  err(403, 'FORBIDDEN'),
  err(404, 'NOT_FOUND: no such feed, or /changes without CHANGESERVER_FEED'),
  err(415, 'UNSUPPORTED_FORMAT: Accept names neither media type'),
  err(429, 'RATE_LIMITED (Retry-After)'),
  err(500, 'INTERNAL_SERVER_ERROR'),
  err(503, 'SERVICE_UNAVAILABLE: shutting down, too many long polls waiting, or marked down'),
];
