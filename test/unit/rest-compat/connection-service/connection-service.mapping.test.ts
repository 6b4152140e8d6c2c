/** The connection service's {message, code} errors and body parameters. */
import { describe, expect, it } from 'vitest';
import { RestError } from '../../../../src/rest-compat/rest-route.ts';
import { STATUS_OF, ServiceErrorCode, errorResponse, graphqlErrorResponse, optional, required } from '../../../../src/rest-compat/connection-service/connection-service.mapping.ts';
import { restRequest } from '../support.ts';

const gql = (code: string, extra: Record<string, unknown> = {}, message = 'm') => graphqlErrorResponse([{ message, extensions: { code, ...extra } }]);

describe('errors', () => {
  it('carry the status of their code', () => {
    expect(errorResponse(ServiceErrorCode.EnvironmentConflict, 'taken')).toEqual({ status: 409, json: { message: 'taken', code: 'ENVIRONMENT_CONFLICT' } });
    for (const code of Object.values(ServiceErrorCode)) expect(STATUS_OF[code]).toBeGreaterThanOrEqual(400);
  });

  it('name the refusal reason of a bad input, else the field, else INVALID_PARAMETER', () => {
    expect(gql('BAD_USER_INPUT', { reason: 'DDL_NOT_ALLOWED' }, 'DROP is not a query')).toEqual({ status: 400, json: { message: 'DROP is not a query', code: 'DDL_NOT_ALLOWED' } });
    expect(gql('BAD_USER_INPUT', { reason: 'SOMETHING_ELSE', field: 'connectionString' }).json).toMatchObject({ code: 'INVALID_CONNECTION_STRING' });
    expect(gql('BAD_USER_INPUT', { field: 'environmentId' }).json).toMatchObject({ code: 'INVALID_ENVIRONMENT_ID' });
    expect(gql('BAD_USER_INPUT').json).toMatchObject({ code: 'INVALID_PARAMETER' });
  });

  it('tell an unknown environment from other misses, and name the holder of a taken environment', () => {
    expect(gql('NOT_FOUND', { what: 'environment' })).toMatchObject({ status: 404, json: { code: 'ENVIRONMENT_NOT_FOUND' } });
    expect(gql('NOT_FOUND', { what: 'cached query' }).json).toMatchObject({ code: 'NOT_FOUND' });
    expect(gql('CONFLICT', { connectionId: 'c1' }, 'env taken').json).toEqual({ message: 'env taken', code: 'ENVIRONMENT_CONFLICT', connectionId: 'c1', jobId: null });
    expect(gql('CONFLICT').json).toEqual({ message: 'm', code: 'ENVIRONMENT_CONFLICT' });
  });

  it('map the other GraphQL codes, and hide internal errors', () => {
    expect(gql('SOURCE_NOT_READY').status).toBe(422);
    expect(gql('CONNECTION_FAILED').status).toBe(422);
    expect(gql('INVALID_STATE').status).toBe(409);
    expect(gql('FORBIDDEN').status).toBe(403);
    expect(gql('UNAUTHENTICATED').status).toBe(401);
    expect(gql('GRAPHQL_VALIDATION_FAILED').json).toMatchObject({ code: 'INVALID_PARAMETER' });
    expect(gql('INTERNAL_SERVER_ERROR', {}, 'stack trace')).toEqual({ status: 500, json: { message: 'internal error', code: 'INTERNAL_ERROR' } });
  });
});

describe('parameters', () => {
  const req = restRequest({ input: { environmentId: 'env-1', schema: ['public', 'other'], blank: '  ' } });
  it('require a non-blank string, first of repeated values', () => {
    expect(required(req, 'environmentId')).toBe('env-1');
    expect(required(req, 'schema')).toBe('public');
    expect(() => required(req, 'blank')).toThrow(new RestError(400, 'blank is required', ServiceErrorCode.MissingParameter));
    expect(() => required(req, 'sqlQuery')).toThrow('sqlQuery is required');
  });
  it('read optional ones as undefined when blank or absent', () => {
    expect(optional(req, 'schema')).toBe('public');
    expect(optional(req, 'blank')).toBeUndefined();
    expect(optional(req, 'none')).toBeUndefined();
  });
});
