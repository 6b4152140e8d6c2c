/**
 * Errors of the change feed layer. Matched by `instanceof` or `code`, never by
 * message text. `PARAMETER_INVALID` is the code the changeserver compat layer
 * answers with HTTP 400; `SnapshotTooOldError` lives with the contract in
 * change-feed.ts.
 */
export enum FeedErrorCode {
  ParameterInvalid = 'PARAMETER_INVALID',
  InvalidTransaction = 'INVALID_TRANSACTION',
}

/** A caller-supplied value (feed name, scope, snapshot, limit, ...) is malformed. */
export class FeedParameterError extends Error {
  override readonly name = 'FeedParameterError';
  readonly code = FeedErrorCode.ParameterInvalid;
  constructor(readonly parameter: string, readonly value: unknown, reason: string, options?: { cause?: unknown }) {
    super(`invalid ${parameter} ${JSON.stringify(value)}: ${reason}`, options);
  }
}

/**
 * A captured transaction the feed refuses: its events are not in strictly
 * increasing sequence order. This is a capture bug, so it is fatal; the feed
 * is left untouched (checked before anything is written).
 */
export class FeedAppendError extends Error {
  override readonly name = 'FeedAppendError';
  readonly code = FeedErrorCode.InvalidTransaction;
  readonly retriable = false;
  constructor(message: string) { super(message); }
}

/**
 * The feed was created again since the appender learnt its generation (its
 * job deleted and one of the same name created): nothing was written.
 * `createdAt` is the generation the feed has now.
 */
export class FeedReplacedError extends Error {
  override readonly name = 'FeedReplacedError';
  readonly retriable = false;
  constructor(readonly feed: string, readonly createdAt: string) { super(`feed ${feed} was created again (generation ${createdAt})`); }
}
