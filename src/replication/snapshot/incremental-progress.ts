/** An incremental snapshot request as job.progress shows it. */
import type { IncrementalSnapshotProgress } from '../../domain/job-model.ts';
import type { IncrementalRequest } from './incremental-request.ts';

export function incrementalProgress(req: IncrementalRequest): IncrementalSnapshotProgress {
  const tables = req.tables?.map((t) => `${t.schema}.${t.table}`)
    ?? req.filter.schemas.flatMap((s) => (s.tables?.length ? s.tables.map((t) => `${s.schema}.${t}`) : [`${s.schema}.*`]));
  return {
    id: req.id, status: req.status, reason: req.reason, tables, ...(req.where ? { where: req.where } : {}),
    rowsDone: req.rowsDone, rowsEstimated: req.rowsEstimated, chunksDone: req.chunksDone, chunksTotal: req.chunksTotal,
    ...(req.error ? { error: req.error } : {}), startedAt: req.createdAt, ...(req.finishedAt ? { finishedAt: req.finishedAt } : {}),
  };
}
