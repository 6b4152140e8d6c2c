/**
 * The source side of a pipeline's Capture module: its own slot (PostgreSQL,
 * `tributary_pl_<id>`) or binlog reader (MariaDB), prepared at submit so the
 * stream starts there whatever the queue delay, and dropped when the
 * pipeline ends (queues/processors/capture-stream.ts runs it).
 */
import { randomBytes } from 'node:crypto';
import type { SourcePosition } from '../change-event.ts';
import type { DbConnectionConfig } from '../connection-config.ts';
import type { CaptureSource } from '../capture/capture-source.ts';
import { createCapture } from '../factory.ts';
import type { Logger } from '../logger.ts';

/** What submit stores in the Capture task's detail. */
export interface StreamCaptureDetail { captureId: string; startPosition: SourcePosition }

export function newCaptureId(): string {
  return `pl_${randomBytes(8).toString('hex')}`;
}

export function captureFor(conn: DbConnectionConfig, captureId: string, at: { schema: string; table: string }, logger: Logger, from?: SourcePosition, serverId?: number): CaptureSource {
  return createCapture({ connection: conn, jobId: captureId, tables: { schemas: [{ schema: at.schema, tables: [at.table] }] }, from, serverId, logger });
}

/** Submit time: create the slot (PostgreSQL) or read the binlog position (MariaDB); everything committed after it is streamed. */
export async function prepareStreamCapture(conn: DbConnectionConfig, at: { schema: string; table: string }, logger: Logger): Promise<StreamCaptureDetail> {
  const captureId = newCaptureId();
  const capture = captureFor(conn, captureId, at, logger);
  try {
    const prepared = await capture.prepare();
    return { captureId, startPosition: prepared.position };
  } finally {
    await capture.close().catch(() => undefined);
  }
}

/** Undo prepareStreamCapture (submit failed after it). */
export async function dropStreamCapture(conn: DbConnectionConfig, detail: StreamCaptureDetail, at: { schema: string; table: string }, logger: Logger): Promise<void> {
  const capture = captureFor(conn, detail.captureId, at, logger, detail.startPosition);
  try { await capture.drop(); } finally { await capture.close().catch(() => undefined); }
}
