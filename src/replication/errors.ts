/**
 * Replication errors are either retriable (I/O, the peer went away: retry
 * with backoff) or fatal (bad config, auth, an unmappable value: the task
 * stops with this message). Match with `instanceof`, never by message text.
 */
export class ReplicationError extends Error {
  override readonly name: string = 'ReplicationError';
  constructor(message: string, readonly retriable: boolean, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class RetriableError extends ReplicationError {
  override readonly name: string = 'RetriableError';
  constructor(message: string, options?: { cause?: unknown }) { super(message, true, options); }
}

export class FatalError extends ReplicationError {
  override readonly name: string = 'FatalError';
  constructor(message: string, options?: { cause?: unknown }) { super(message, false, options); }
}

/**
 * What a capture must continue from is gone from the source: a MariaDB
 * binlog file (or GTID state) was purged, or a PostgreSQL job's replication
 * slot was dropped. Fatal (retrying reads the same missing position), but
 * a job created with `onLogLoss: RESNAPSHOT` catches it and starts over from
 * the source's current position with a new snapshot. `lost` says what is gone
 * and where, in a few words ("binlog purged at binlog.000003:1234").
 */
export class LogLostError extends FatalError {
  override readonly name: string = 'LogLostError';
  constructor(message: string, readonly lost: string, options?: { cause?: unknown }) { super(message, options); }
}

/** A value that cannot be written to the destination type. Never altered silently. */
export class UnmappableValueError extends FatalError {
  override readonly name: string = 'UnmappableValueError';
  constructor(readonly table: string, readonly column: string, readonly value: unknown, reason: string) {
    super(`cannot map value ${JSON.stringify(value)} of column ${column} in table ${table}: ${reason}`);
  }
}

/** DDL the engine does not replicate: the job fails and quotes the statement. */
export class UnsupportedDdlError extends FatalError {
  override readonly name: string = 'UnsupportedDdlError';
  constructor(readonly statement: string, reason?: string) {
    super(`unsupported DDL on a replicated schema, job stopped to avoid divergence${reason ? ` (${reason})` : ''}: ${statement}`);
  }
}

const RETRIABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT',
  '57P01', '57P02', '57P03', '53300', '40001', '40P01', '08000', '08003', '08006', '08001', '08004',
]);
const FATAL_CODES = new Set([
  'ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_SPECIFIC_ACCESS_DENIED_ERROR', '28P01', '28000', '3D000', 'ER_BAD_DB_ERROR', 'ENOTFOUND',
  // Destination DDL that fails the same way however often it runs: duplicate column, key or identifier too long.
  'ER_DUP_FIELDNAME', 'ER_TOO_LONG_KEY', 'ER_TOO_LONG_IDENT', 'ER_WRONG_COLUMN_NAME', '42701', '42622',
]);

/**
 * True when the error (or an error it wraps) is the peer being unreachable or
 * a transient conflict (connection refused or lost, server shutting down,
 * deadlock, serialization failure): retried for as long as it lasts, never
 * counted as "failing the same way" (see TaskRun.fail).
 */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && RETRIABLE_CODES.has(code)) return true;
  }
  return false;
}

/** Classify any driver error. Unknown errors are retriable: a restart from the checkpoint is always safe. */
export function classify(err: unknown): ReplicationError {
  if (err instanceof ReplicationError) return err;
  const e = err as { code?: string; message?: string };
  const msg = e?.message ?? String(err);
  if (e?.code && FATAL_CODES.has(e.code)) return new FatalError(msg, { cause: err });
  if (e?.code && RETRIABLE_CODES.has(e.code)) return new RetriableError(msg, { cause: err });
  return new RetriableError(msg, { cause: err });
}
