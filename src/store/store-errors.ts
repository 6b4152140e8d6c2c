/**
 * Errors of the metadata database, translated by the repositories so that
 * no caller looks at PostgreSQL's SQLSTATE codes: match with `instanceof`.
 */

/** PostgreSQL's unique_violation. */
const UNIQUE_VIOLATION = '23505';

/** An insert or update collided with a unique constraint (a name, an id, a version already taken). */
export class UniqueViolationError extends Error {
  override readonly name = 'UniqueViolationError';
  /** The violated constraint, when PostgreSQL names it. */
  readonly constraint: string | undefined;
  constructor(message: string, constraint: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.constraint = constraint;
  }
}

/** `.catch(translateStoreError)` on a query: rethrows a unique violation as UniqueViolationError, anything else as it is. */
export function translateStoreError(err: unknown): never {
  const e = err as { code?: string; constraint?: string; message?: string };
  if (e?.code === UNIQUE_VIOLATION) throw new UniqueViolationError(e.message ?? 'unique violation', e.constraint, { cause: err });
  throw err;
}
