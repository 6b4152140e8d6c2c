/**
 * A job's column and row controls as its tasks use them: compiled against
 * each table's columns, with the job's hashing salt read (and created once)
 * from the store only when a table hashes a column. Capture runs every
 * change through them before the feed, the snapshot every row and the
 * destination table's shape, so the destination and every feed reader see
 * the same controlled data (docs/consistency.md, "Column and row controls").
 */
import type { JobRow } from '../../store/job.repo.ts';
import type { DbConnectionConfig } from '../../replication/connection-config.ts';
import { JobControls } from '../../replication/transform/table-controls.ts';
import { hasControls } from '../../domain/table-filter.ts';
import type { ReplicationDeps } from './task-run.ts';

/** The job's compiled controls, or undefined when no selection has any. */
export async function jobControls(deps: Pick<ReplicationDeps, 'jobs'>, job: JobRow, source: Pick<DbConnectionConfig, 'kind'>): Promise<JobControls | undefined> {
  const selections = job.spec.tables?.schemas ?? [];
  if (!selections.some(hasControls)) return undefined;
  const hashes = selections.some((s) => (s.columns?.hash?.length ?? 0) > 0);
  const salt = hashes ? await deps.jobs.controlSalt(job.id) : undefined;
  return new JobControls(job.spec.tables, { salt, dialect: source.kind === 'postgres' ? 'postgres' : 'mysql' });
}
