/**
 * Shapes every GraphQL error: a code from ErrorCode in extensions.code, a
 * message safe to show, never a stack trace, never a secret.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { AuthorizationError, AuthenticationError, ArgumentValidationError } from 'type-graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { AppError, ErrorCode } from '../errors.ts';
import { AuthError } from '../auth/authenticator.ts';
import { maskSecrets } from '../observability/logger.ts';

const APOLLO_CODES = new Set<string>(Object.values(ErrorCode));
const VARIABLE_COERCION = /^Variable "\$[A-Za-z_][A-Za-z0-9_]*" (got invalid value|of required type|of non-null type)/;

function isPgDataException(e: unknown): e is Error & { code: string } {
  return e instanceof Error && 'severity' in e && typeof (e as { code?: unknown }).code === 'string' && /^22[0-9A-Z]{3}$/.test((e as unknown as { code: string }).code);
}

export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  const base = { message: maskSecrets(formatted.message), locations: formatted.locations, path: formatted.path };
  if (original instanceof AppError) {
    return { ...base, message: maskSecrets(original.message), extensions: { code: original.code, ...(original.details ?? {}) } };
  }
  if (original instanceof AuthError) {
    return { ...base, extensions: { code: original.kind === 'forbidden' ? ErrorCode.Forbidden : ErrorCode.Unauthenticated } };
  }
  if (original instanceof AuthorizationError) return { ...base, message: 'your role does not allow this operation', extensions: { code: ErrorCode.Forbidden } };
  if (original instanceof AuthenticationError) return { ...base, message: 'a bearer token is required', extensions: { code: ErrorCode.Unauthenticated } };
  if (original instanceof ArgumentValidationError) return { ...base, extensions: { code: ErrorCode.BadUserInput } };
  // PostgreSQL "data exception" (SQLSTATE class 22): a caller's value the database cannot take, e.g. a NUL
  // byte in a string (22021), a number out of range (22003), text that is no valid uuid (22P02).
  if (isPgDataException(original)) return { ...base, message: `invalid value: ${maskSecrets(original.message)}`, extensions: { code: ErrorCode.BadUserInput } };
  const code = formatted.extensions?.code;
  // Apollo recodes every validation error GRAPHQL_VALIDATION_FAILED; the cost rules' own code (depth, aliases) is kept.
  const inner = (error as { originalError?: { extensions?: { code?: unknown } } } | undefined)?.originalError;
  if (code === ErrorCode.GraphqlValidationFailed && inner?.extensions?.code === ErrorCode.QueryTooComplex) return { ...base, extensions: { code: ErrorCode.QueryTooComplex } };
  // Variable coercion (an unknown enum value, a missing required field): the caller's input.
  // Apollo tags these BAD_USER_INPUT only when its graphql instance is the one that threw;
  // with two copies loaded (e.g. an aliased graphql under vitest) they arrived as internal.
  if (VARIABLE_COERCION.test(formatted.message)) return { ...base, extensions: { code: ErrorCode.BadUserInput } };
  // Apollo's own request errors without a code (a persisted-query hash that does not match) carry a 4xx
  // status but arrive coded INTERNAL_SERVER_ERROR: they are the caller's.
  const httpStatus = (error as { extensions?: { http?: { status?: unknown } } } | undefined)?.extensions?.http?.status;
  if (code === ErrorCode.Internal && !(original instanceof Error && original !== error) && typeof httpStatus === 'number' && httpStatus < 500) {
    return { ...base, extensions: { code: ErrorCode.BadUserInput } };
  }
  if (typeof code === 'string' && APOLLO_CODES.has(code)) {
    return { ...base, extensions: { code } };
  }
  if (typeof code === 'string' && ['BAD_REQUEST', 'PERSISTED_QUERY_NOT_FOUND', 'PERSISTED_QUERY_NOT_SUPPORTED', 'OPERATION_RESOLUTION_FAILURE'].includes(code)) {
    return { ...base, extensions: { code: ErrorCode.BadUserInput } };
  }
  if (error instanceof GraphQLError && !error.originalError) {
    // Validation-phase errors without a code (e.g. from graphql-js rules).
    return { ...base, extensions: { code: ErrorCode.GraphqlValidationFailed } };
  }
  return { message: 'internal error', locations: formatted.locations, path: formatted.path, extensions: { code: ErrorCode.Internal } };
}
