/**
 * verifyJob: compare a job's destination with its source, range by range,
 * while the job keeps running (replication/verify/table-verify.ts).
 */
import type { TableFilter } from '../replication/connection-config.ts';
import { verifyTables, type TableReport, type VerifyOptions } from '../replication/verify/table-verify.ts';
import { JobControls } from '../replication/transform/table-controls.ts';
import { hasControls } from '../domain/table-filter.ts';
import { AppError, ErrorCode, badInput } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ConnectionService } from './connection.service.ts';
import type { JobService } from './job.service.ts';
import { JobStatus } from '../domain/job-model.ts';

export interface JobVerification {
  jobId: string;
  jobStatus: JobStatus;
  /** The job's apply lag when the verification started (ms), if known. */
  lagMs: number | null;
  startedAt: Date;
  finishedAt: Date;
  equal: boolean;
  tables: TableReport[];
}

export interface VerifyRequest {
  /** "schema.table" or "table" names of the job's tables; empty = all. */
  tables?: string[] | null;
  chunkRows?: number | null;
  rechecks?: number | null;
  recheckDelayMs?: number | null;
}

export class JobVerifyService {
  constructor(private readonly jobs: JobService, private readonly connections: ConnectionService, private readonly logger: Logger) {}

  async verify(ref: string, req: VerifyRequest = {}): Promise<JobVerification> {
    const job = await this.jobs.get(ref);
    if (!job.source_connection_id || !job.dest_connection_id) {
      throw new AppError(ErrorCode.InvalidState, `job ${job.name} has no destination to verify (type ${job.type})`);
    }
    if (req.chunkRows != null && (req.chunkRows < 100 || req.chunkRows > 1_000_000)) throw badInput('chunkRows must be between 100 and 1000000', 'chunkRows');
    if (req.rechecks != null && (req.rechecks < 0 || req.rechecks > 20)) throw badInput('rechecks must be between 0 and 20', 'rechecks');
    if (req.recheckDelayMs != null && (req.recheckDelayMs < 0 || req.recheckDelayMs > 60_000)) throw badInput('recheckDelayMs must be between 0 and 60000', 'recheckDelayMs');
    const filter = narrow(job.spec.tables, req.tables ?? []);
    const [source, destination] = await Promise.all([
      this.connections.repo.config(job.source_connection_id),
      this.connections.repo.config(job.dest_connection_id),
    ]);
    const startedAt = new Date();
    const opts: VerifyOptions = { logger: this.logger };
    if (req.chunkRows != null) opts.chunkRows = req.chunkRows;
    if (req.rechecks != null) opts.rechecks = req.rechecks;
    if (req.recheckDelayMs != null) opts.recheckDelayMs = req.recheckDelayMs;
    // The job's controls (from its whole filter: `narrow` keeps names only) shape the source side.
    if (job.spec.tables.schemas.some(hasControls)) {
      const hashes = job.spec.tables.schemas.some((s) => (s.columns?.hash?.length ?? 0) > 0);
      opts.controls = new JobControls(job.spec.tables, { salt: hashes ? await this.jobs.controlSalt(job.id) : undefined, dialect: source.kind === 'postgres' ? 'postgres' : 'mysql' });
    }
    let tables: TableReport[];
    try {
      tables = await verifyTables(source, destination, filter, job.spec.rename, opts);
    } catch (err) {
      throw new AppError(ErrorCode.ConnectionFailed, `verify of job ${job.name} failed: ${(err as Error).message}`, undefined, { cause: err });
    }
    const names = new Set(tables.map((t) => `${t.schema}.${t.table}`));
    for (const n of req.tables ?? []) {
      if (![...names].some((x) => x === n || x.endsWith(`.${n}`))) throw badInput(`table ${n} is not one of job ${job.name}'s tables at the source`, 'tables');
    }
    return {
      jobId: job.id, jobStatus: job.status, lagMs: job.metrics.lagMs ?? null,
      startedAt, finishedAt: new Date(), equal: tables.every((t) => t.status === 'EQUAL'), tables,
    };
  }
}

/** The job's table filter, narrowed to the named tables ("schema.table" or "table"). */
function narrow(filter: TableFilter, names: string[]): TableFilter {
  if (names.length === 0) return filter;
  const schemas: TableFilter['schemas'] = [];
  for (const n of names) {
    const dot = n.indexOf('.');
    const schema = dot < 0 ? undefined : n.slice(0, dot);
    const table = dot < 0 ? n : n.slice(dot + 1);
    const owners = filter.schemas.filter((s) => (schema === undefined || s.schema === schema) && (!s.tables || s.tables.length === 0 || s.tables.includes(table)));
    if (owners.length === 0) throw badInput(`table ${n} is not one of the job's tables`, 'tables');
    for (const s of owners) {
      const at = schemas.find((x) => x.schema === s.schema);
      if (at) at.tables!.push(table);
      else schemas.push({ schema: s.schema, tables: [table] });
    }
  }
  return { schemas };
}
