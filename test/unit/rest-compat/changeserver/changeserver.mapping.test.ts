/** changeserver's wire shapes: errors, parameters, content negotiation, ChangeList JSON and protobuf. */
import { describe, expect, it } from 'vitest';
import { RestError } from '../../../../src/rest-compat/rest-route.ts';
import {
  ChangeListPb, ChangeserverCode, MediaType, changeListJson, changeListProto, errorResponse, graphqlErrorResponse, intParam, multi, restErrorResponse,
  selectMediaType, serialize, single, valuePb, valueText, type GqlChangeList,
} from '../../../../src/rest-compat/changeserver/changeserver.mapping.ts';

const list: GqlChangeList = {
  firstSequence: '0.16b3748.0', lastSequence: '0.16b3748.1',
  changes: [{
    sequence: '0.16b3748.0', txid: '18446744073709551615', commitSequence: '23803720', changeSequence: '23803720', commitIndex: 0, operation: 2,
    schema: 'public', table: 'items', newRow: { id: '9007199254740993', name: 'b', blob: 'AP8=', at: '2000-01-01T00:00:01.5Z' }, oldRow: { id: 1, name: null },
    columnTypes: [{ name: 'id', kind: 'int', pgType: 20 }, { name: 'name', kind: 'text', pgType: 25 }, { name: 'blob', kind: 'binary', pgType: 17 }, { name: 'at', kind: 'timestamptz', pgType: 1184 }],
    commitTime: '2024-01-01T00:00:10.900Z',
  }],
};

describe('errors', () => {
  it('are the Error model {code, error, description}', () => {
    expect(errorResponse(400, ChangeserverCode.MissingParameter, 'scope')).toEqual({ status: 400, json: { code: 'MISSING_PARAMETER', error: 'A required parameter is missing', description: 'scope' } });
  });
  it('take a RestError\'s code, else one from its status, and hide 5xx details', () => {
    expect(restErrorResponse(new RestError(400, 'limit', ChangeserverCode.ParameterInvalid)).json).toMatchObject({ code: 'PARAMETER_INVALID', description: 'limit' });
    expect(restErrorResponse(new RestError(405, 'method PUT not allowed')).json).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
    expect(restErrorResponse(new RestError(500, 'secret'))).toEqual({ status: 500, json: { code: 'INTERNAL_SERVER_ERROR', error: 'An error occurred in the server' } });
  });
  it('map GraphQL codes; 503 says why, other 5xx do not', () => {
    expect(graphqlErrorResponse([{ message: 'since 0.1.0 was trimmed', extensions: { code: 'SNAPSHOT_TOO_OLD' } }])).toMatchObject({ status: 400, json: { code: 'SNAPSHOT_TOO_OLD', description: 'since 0.1.0 was trimmed' } });
    expect(graphqlErrorResponse([{ message: 'shutting down', extensions: { code: 'UNAVAILABLE' } }])).toMatchObject({ status: 503, json: { description: 'shutting down' } });
    expect(graphqlErrorResponse([{ message: 'stack' }]).json).toEqual({ code: 'INTERNAL_SERVER_ERROR', error: 'An error occurred in the server' });
  });
});

describe('parameters', () => {
  it('read repeated, single and integer values; junk names the parameter', () => {
    const q = { scope: ['a', 'b'], since: '', limit: '10', block: 'x' };
    expect(multi(q, 'scope')).toEqual(['a', 'b']);
    expect(multi(q, 'none')).toEqual([]);
    expect(single(q, 'since')).toBeUndefined();
    expect(intParam(q, 'limit')).toBe(10);
    expect(() => intParam(q, 'block')).toThrow(new RestError(400, 'block', ChangeserverCode.ParameterInvalid));
  });
  it('negotiate JSON or protobuf by q-value; wildcards pick JSON; nothing acceptable is 415', () => {
    expect(selectMediaType(undefined)).toBe(MediaType.Json);
    expect(selectMediaType('*/*')).toBe(MediaType.Json);
    expect(selectMediaType('application/transicator+protobuf')).toBe(MediaType.Protobuf);
    expect(selectMediaType('application/json;q=0.5, application/transicator+protobuf;q=0.9')).toBe(MediaType.Protobuf);
    expect(selectMediaType('application/transicator+protobuf;q=0, application/*')).toBe(MediaType.Json);
    try { selectMediaType('text/html'); expect.unreachable(); } catch (e) { expect(e).toMatchObject({ status: 415, code: 'UNSUPPORTED_FORMAT' }); }
  });
});

describe('ChangeList JSON', () => {
  it('writes values in PostgreSQL text form with their type OIDs, and 64-bit numbers exactly', () => {
    const json = changeListJson(list);
    const text = serialize(json);
    const parsed = JSON.parse(text);
    expect(parsed.changes[0]).toMatchObject({
      operation: 2, table: 'public.items', sequence: '0.16b3748.0', commitIndex: 0, timestamp: 1704067210,
      newRow: { name: { value: 'b', type: 25 }, blob: { value: '\\x00ff', type: 17 } },
      oldRow: { id: { value: '1', type: 20 }, name: { value: null, type: 25 } },
    });
    expect(text).toContain('"txid": 18446744073709551615');
    expect(text).toContain('"value": "9007199254740993"');
    expect(text.split('\n')[1]).toMatch(/^ {2}"/);
  });
  it('prints values as Transicator did', () => {
    expect(valueText(true, 'bool')).toBe('true');
    expect(valueText(1.5, 'float')).toBe('1.5');
    expect(valueText(null, 'text')).toBeNull();
    expect(valueText({ a: 1 }, 'json')).toBe('{"a":1}');
  });
});

describe('ChangeList protobuf', () => {
  it('types values in ValuePb\'s oneof', () => {
    expect(valuePb(true, 'bool')).toEqual({ bool: true });
    expect(valuePb(2.5, 'float')).toEqual({ double: 2.5 });
    expect(valuePb('AP8=', 'binary')).toEqual({ bytes: Buffer.from([0, 255]) });
    expect(valuePb('2000-01-01T00:00:01.5Z', 'timestamptz')).toEqual({ timestamp: { low: 1_500_000, high: 0, unsigned: false } });
    expect(valuePb('0000-00-00 00:00:00', 'datetime')).toEqual({ string: '0000-00-00 00:00:00' });
    expect(valuePb(null, 'text')).toBeUndefined();
  });
  it('round-trips through the Transicator message, 64-bit fields exact', () => {
    const decoded = ChangeListPb.toObject(ChangeListPb.decode(changeListProto(list)), { longs: String }) as Record<string, any>;
    expect(decoded.firstSequence).toBe('0.16b3748.0');
    const c = decoded.changes[0];
    expect(c).toMatchObject({ operation: 2, table: 'public.items', commitSequence: '23803720', transactionIDEpoch: '18446744073709551615', timestamp: '1704067210' });
    expect(c.transactionID).toBeUndefined();
    expect(c.newColumns.map((x: { name: string }) => x.name)).toEqual(['id', 'name', 'blob', 'at']);
    // Above 2^53 exactly, in the int64 field (issue 14 item 14).
    expect(c.newColumns[0]).toMatchObject({ name: 'id', type: 20, value: { int: '9007199254740993' } });
    expect(c.oldColumns[1]).toEqual({ name: 'name', type: 25 });
  });
});
