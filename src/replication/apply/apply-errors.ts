/**
 * Driver errors from a destination write, sorted into retriable and fatal.
 * errors.ts `classify` treats unknown codes as retriable (safe for I/O), but a
 * statement the destination rejects for its data or shape fails the same way
 * on every retry, so those stop the task instead of looping.
 */
import { FatalError, classify, type ReplicationError } from '../errors.ts';

/** PostgreSQL SQLSTATE classes: 22 data exception, 23 integrity, 42 syntax / undefined object, 0A not supported. */
const PG_FATAL_CLASSES = new Set(['22', '23', '42', '0A']);

/** MariaDB/MySQL errors about data or schema (mysql2 `code`). */
const MYSQL_FATAL_CODES = new Set([
  'ER_DATA_TOO_LONG', 'ER_TRUNCATED_WRONG_VALUE', 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD', 'ER_WARN_DATA_OUT_OF_RANGE',
  'ER_BAD_FIELD_ERROR', 'ER_NO_SUCH_TABLE', 'ER_PARSE_ERROR', 'ER_DUP_ENTRY', 'ER_BAD_NULL_ERROR',
  'ER_CONSTRAINT_FAILED', 'ER_INVALID_JSON_TEXT', 'ER_TOO_BIG_ROWSIZE', 'ER_WRONG_VALUE_COUNT_ON_ROW',
  'ER_TOO_LONG_KEY', 'ER_BLOB_KEY_WITHOUT_LENGTH', 'ER_INVALID_DEFAULT', 'WARN_DATA_TRUNCATED',
]);

export function toApplyError(err: unknown): ReplicationError {
  const e = err as { code?: unknown; message?: string };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^[0-9A-Z]{5}$/.test(code) && PG_FATAL_CLASSES.has(code.slice(0, 2))) {
    return new FatalError(`destination rejected the write (${code}): ${e.message}`, { cause: err });
  }
  if (MYSQL_FATAL_CODES.has(code)) return new FatalError(`destination rejected the write (${code}): ${e.message}`, { cause: err });
  return classify(err);
}
