/**
 * Why a cached query is refused, as one vocabulary. Each refusal carries a
 * code callers can match and a message that says what to change.
 */
export enum RefusalCode {
  /** The text is not SQL the parser understands (in the source's dialect). */
  Syntax = 'SQL_SYNTAX',
  /** More than one statement. */
  MultipleStatements = 'MULTIPLE_STATEMENTS',
  /** DDL (CREATE, DROP, ALTER, TRUNCATE, ...). */
  Ddl = 'DDL_NOT_ALLOWED',
  /** DML (INSERT, UPDATE, DELETE, ...) or anything else that is not a SELECT. */
  NotSelect = 'NOT_A_SELECT',
  /** A function with side effects or access outside the query (pg_sleep, load_file, ...). */
  SideEffect = 'SIDE_EFFECT_FUNCTION',
  /** SELECT ... INTO, FOR UPDATE, variable assignment. */
  Writes = 'SELECT_WRITES',
  /** A table the Prisma schema does not declare. */
  UnknownTable = 'UNKNOWN_TABLE',
  /** A column the Prisma schema does not declare on the query's tables. */
  UnknownColumn = 'UNKNOWN_COLUMN',
  /** The Prisma schema text does not parse. */
  BadSchema = 'INVALID_PRISMA_SCHEMA',
}

export class QueryRefusedError extends Error {
  override readonly name = 'QueryRefusedError';
  constructor(readonly code: RefusalCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
