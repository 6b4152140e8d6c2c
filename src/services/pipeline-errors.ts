/** Pipeline errors shared by submit, tracking, the model registry and data load/export. */
import { AppError, ErrorCode } from '../errors.ts';

/** A data problem (a table or namespace that does not exist, a bad file): FATE's DATA_ERROR. */
export function dataError(message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError(ErrorCode.BadUserInput, message, { category: 'data', ...details });
}
