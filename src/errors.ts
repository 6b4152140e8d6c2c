/**
 * The error vocabulary of the GraphQL boundary: every error a caller sees
 * carries one of these codes in `extensions.code`. Services throw AppError;
 * the server maps anything else to INTERNAL_SERVER_ERROR without details.
 */
export enum ErrorCode {
  BadUserInput = 'BAD_USER_INPUT',
  GraphqlParseFailed = 'GRAPHQL_PARSE_FAILED',
  GraphqlValidationFailed = 'GRAPHQL_VALIDATION_FAILED',
  Unauthenticated = 'UNAUTHENTICATED',
  Forbidden = 'FORBIDDEN',
  NotFound = 'NOT_FOUND',
  Conflict = 'CONFLICT',
  QueryTooComplex = 'QUERY_TOO_COMPLEX',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  ParameterInvalid = 'PARAMETER_INVALID',
  SnapshotTooOld = 'SNAPSHOT_TOO_OLD',
  /** A change subscriber did not consume its bounded buffer in time and was closed. */
  SubscriberTooSlow = 'SUBSCRIBER_TOO_SLOW',
  ConnectionFailed = 'CONNECTION_FAILED',
  /** The source is reachable but lacks what capture needs (binlog / WAL settings, privileges, slots); the message names each and its fix. */
  SourceNotReady = 'SOURCE_NOT_READY',
  Unavailable = 'UNAVAILABLE',
  InvalidState = 'INVALID_STATE',
  /** Too many requests for this token (or address, in open mode) in the rate-limit window; retry after the time given. */
  RateLimited = 'RATE_LIMITED',
  /** A per-connection or per-gateway limit (subscriptions per graphql-ws connection) is reached. */
  LimitExceeded = 'LIMIT_EXCEEDED',
  Internal = 'INTERNAL_SERVER_ERROR',
}

export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(readonly code: ErrorCode, message: string, readonly details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const notFound = (what: string, id: string) => new AppError(ErrorCode.NotFound, `${what} ${id} not found`, { what, id });
export const badInput = (message: string, field?: string) => new AppError(ErrorCode.BadUserInput, message, field ? { field } : undefined);
