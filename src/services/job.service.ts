/**
 * Jobs: create (with inline connections), start, pause, resume, stop,
 * delete, and their event stream. See domain/job-model.ts for the state machine.
 * Tasks run on workers (src/queues/processors); this service only moves
 * state, enqueues tasks and tells running tasks to stop.
 */
import type { JobStat } from '../observability/metrics.ts';
import type { SourcePosition } from '../replication/change-event.ts';
import { retainedLogBytes } from '../replication/capture/log-retention.ts';
import type { JobRepo, JobRow, TaskRow } from '../store/job.repo.ts';
import type { ConnectionService, ConnectionInputData } from './connection.service.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import { enqueueJobTasks } from '../queues/task-enqueue.ts';
import { Topic, topicFor, type AppPubSub } from '../events/pubsub.ts';
import { AppError, ErrorCode, badInput, notFound } from '../errors.ts';
import { DEFAULT_HEARTBEAT_SECONDS, DEFAULT_SPEC, JobStatus, JobType, LogLossAction, type JobSpec } from '../domain/job-model.ts';
import type { Principal } from '../auth/roles.ts';
import type { Redis } from 'ioredis';
import { inflightKey } from '../replication/feed/feed-keys.ts';
import { openFeed } from '../replication/feed/feed-registry.ts';
import { blockingRequirements, createCapture, describeRequirements } from '../replication/factory.ts';
import { silentLogger } from '../replication/logger.ts';
import { parseStartPosition } from '../replication/position.ts';
import { jobStatusEvent } from '../domain/job-views.ts';
import { currentThenLive } from '../events/live.ts';
import { sharedPoolOnly, type PlacementResolver } from './placement.ts';
import { UniqueViolationError } from '../store/store-errors.ts';
import { matchesFilter } from '../replication/connection-config.ts';
import { addedTables, type TableChoice } from '../domain/table-filter.ts';
import { validateSelect } from '../replication/cached-query/query-plan.ts';
import { IncrementalRequestStore, newIncrementalRequest } from '../replication/snapshot/incremental-request.ts';
import { incrementalProgress } from '../replication/snapshot/incremental-progress.ts';

export type { TableChoice };
import { checkControlsAtSource, checkSnapshotWhere, controlsText, toSelection, type TableSelectionData } from './job-controls.ts';

export interface JobInputData {
  name: string;
  type?: JobType;
  sourceConnectionId?: string | null;
  source?: ConnectionInputData | null;
  destinationConnectionId?: string | null;
  destination?: ConnectionInputData | null;
  tables?: TableSelectionData[] | null;
  /** Udup ReplicateIgnoreDb: schemas or tables left out of `tables`. */
  ignoreTables?: { schema: string; tables?: string[] | null }[] | null;
  rename?: Record<string, Record<string, string>> | null;
  parallelWorkers?: number | null;
  replChanBufferSize?: number | null;
  msgsLimit?: number | null;
  msgBytesLimit?: number | null;
  bytesLimit?: number | null;
  startPosition?: string | null;
  selectorColumn?: string | null;
  snapshot?: boolean | null;
  chunkRows?: number | null;
  feedName?: string | null;
  nodeHints?: Record<string, string> | null;
  onLogLoss?: LogLossAction | null;
  heartbeatIntervalSeconds?: number | null;
  paused?: boolean | null;
}

/** Control messages to workers: abort the tasks of a job. */
export const JOB_CONTROL_TOPIC = 'job-control';
export interface JobControlMessage { jobId: string; runId: number; action: 'abort' }

const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

function intIn(v: number | null | undefined, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw badInput(`${name} must be an integer between ${min} and ${max}`, name);
  return v;
}

/** The GTID a MySQL start position names, if any; a malformed position is buildSpec's to report. */
function startGtid(text: string): string | undefined {
  try {
    const p = parseStartPosition('mysql', text);
    return p?.kind === 'mysql' ? p.gtid : undefined;
  } catch {
    return undefined;
  }
}

function logLossAction(v: LogLossAction | null | undefined): LogLossAction {
  if (v === undefined || v === null) return LogLossAction.Fail;
  if (!Object.values(LogLossAction).includes(v)) throw badInput(`onLogLoss must be one of ${Object.values(LogLossAction).join(', ')}`, 'onLogLoss');
  return v;
}

/** How long a source's retained-log answer is reused. */
const RETAINED_LOG_CACHE_MS = 5000;

export class JobService {
  /** Where tasks run (queue and note); the composition root sets the cluster service's. */
  placement: PlacementResolver = sharedPoolOnly;

  constructor(
    readonly repo: JobRepo,
    private readonly connections: ConnectionService,
    private readonly queues: QueueSet,
    private readonly pubSub: AppPubSub,
    private readonly redis: Redis,
    private readonly feedPrefix: string,
  ) {}

  async count(f: { status?: JobStatus[]; type?: JobType[]; name?: string }): Promise<number> {
    return (await this.repo.list(f, 0, 0)).total;
  }

  async list(f: { status?: JobStatus[]; type?: JobType[]; name?: string }, offset: number, limit: number): Promise<JobRow[]> {
    return (await this.repo.list(f, offset, limit)).rows;
  }

  /** Transactions captured into the job's feed and not yet applied (the ReplChanBufferSize counter); null without apply. */
  async backlog(id: string, type?: string): Promise<number | null> {
    if (type === JobType.Subscribe) return null;
    const n = await this.redis.get(inflightKey(this.feedPrefix, id));
    return Math.max(0, Number(n ?? 0));
  }

  private readonly retained = new Map<string, { at: number; value: Promise<number | null> }>();

  /** retainedLogBytes of a job, asked of its source at most every RETAINED_LOG_CACHE_MS. */
  async retainedLog(ref: string): Promise<number | null> {
    const row = await this.repo.find(ref);
    if (!row?.source_connection_id || row.status !== JobStatus.Running) return null;
    const hit = this.retained.get(row.id);
    if (hit && Date.now() - hit.at < RETAINED_LOG_CACHE_MS) return hit.value;
    const sourceId = row.source_connection_id;
    const value = (async () => retainedLogBytes(await this.connections.repo.config(sourceId), row.id, row.metrics.capturedPosition as SourcePosition | undefined))()
      .catch(() => null);
    this.retained.set(row.id, { at: Date.now(), value });
    for (const [id, e] of this.retained) if (Date.now() - e.at > 10 * RETAINED_LOG_CACHE_MS) this.retained.delete(id);
    return value;
  }

  /** Lag, backlog and last captured commit of every running job, for the per-job /metrics gauges. */
  async stats(): Promise<JobStat[]> {
    const rows = (await this.repo.list({ status: [JobStatus.Running] }, 0, 10_000)).rows;
    return Promise.all(rows.map(async (r) => {
      const backlog = await this.backlog(r.id, r.type).catch(() => null);
      const lag = r.metrics.lagMs ?? null;
      const commit = r.metrics.lastCommitAt ? Date.parse(r.metrics.lastCommitAt) / 1000 : null;
      return { job: r.name, lagSeconds: lag === null ? null : backlog === 0 ? 0 : lag / 1000, backlog, lastCommitSeconds: commit, retainedLogBytes: await this.retainedLog(r.id) };
    }));
  }
  /** By id, numeric index or name; undefined when there is none. */
  find(ref: string): ReturnType<JobRepo['find']> { return this.repo.find(ref); }

  /** The last `limit` lines of a job's log. */
  logs(jobId: string, limit: number): ReturnType<JobRepo['logs']> { return this.repo.logs(jobId, limit); }

  /** The tasks of these jobs, in one query (GraphQL's per-request loader). */
  tasksOf(jobIds: readonly string[]): Promise<TaskRow[]> { return this.repo.tasksOf(jobIds); }

  /** The job's hashing salt for column controls (created on first use). Internal: never hand it to an API. */
  controlSalt(jobId: string): Promise<string> { return this.repo.controlSalt(jobId); }

  async get(ref: string): Promise<JobRow> {
    const row = await this.repo.find(ref);
    if (!row) throw notFound('job', ref);
    return row;
  }

  private buildSpec(input: JobInputData, type: JobType, sourceKind: 'mysql' | 'postgres' | undefined): JobSpec {
    const tables = (input.tables ?? []).map((t) => {
      if (!t.schema) throw badInput('every table selection needs a schema', 'tables');
      return toSelection(t, sourceKind);
    });
    const ignore = (input.ignoreTables ?? []).map((t) => {
      if (!t.schema) throw badInput('every ignored table selection needs a schema', 'ignoreTables');
      return { schema: t.schema, tables: t.tables?.filter(Boolean) ?? undefined };
    });
    if (input.startPosition && sourceKind) {
      try { parseStartPosition(sourceKind, input.startPosition); } catch (err) { throw badInput((err as Error).message, 'startPosition'); }
    }
    if (input.selectorColumn && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(input.selectorColumn)) throw badInput('selectorColumn must be a column name', 'selectorColumn');
    return {
      tables: ignore.length ? { schemas: tables, ignore } : { schemas: tables },
      rename: input.rename ?? undefined,
      parallelWorkers: intIn(input.parallelWorkers, 'parallelWorkers', 1, 64, DEFAULT_SPEC.parallelWorkers),
      replChanBufferSize: intIn(input.replChanBufferSize, 'replChanBufferSize', 1, 10_000_000, DEFAULT_SPEC.replChanBufferSize),
      msgsLimit: intIn(input.msgsLimit, 'msgsLimit', 0, 1_000_000_000, 0),
      msgBytesLimit: intIn(input.msgBytesLimit, 'msgBytesLimit', 0, 2_000_000_000, 0),
      bytesLimit: intIn(input.bytesLimit, 'bytesLimit', 0, 2_000_000_000, 0),
      startPosition: input.startPosition || undefined,
      selectorColumn: input.selectorColumn || DEFAULT_SPEC.selectorColumn,
      snapshot: input.snapshot ?? (type !== JobType.Subscribe && !input.startPosition),
      chunkRows: intIn(input.chunkRows, 'chunkRows', 100, 10_000_000, DEFAULT_SPEC.chunkRows),
      nodeHints: input.nodeHints ?? undefined,
      onLogLoss: logLossAction(input.onLogLoss),
      heartbeatIntervalSeconds: intIn(input.heartbeatIntervalSeconds, 'heartbeatIntervalSeconds', 0, 3600, DEFAULT_HEARTBEAT_SECONDS),
    };
  }

  /** Create and (unless paused) start. Connections given inline are created first and removed again if the job cannot be created. */
  async create(input: JobInputData, principal?: Principal): Promise<JobRow> {
    if (!input.name) throw badInput('job name is required', 'name');
    if (!NAME_RE.test(input.name)) throw badInput(`job name "${input.name}" must match ${NAME_RE.source}`, 'name');
    const type = input.type ?? JobType.Synchronous;
    if (type === JobType.Pipeline) throw badInput('pipeline jobs are submitted through the pipeline API', 'type');
    const feedName = input.feedName ?? input.name;
    if (!NAME_RE.test(feedName)) throw badInput(`feed name "${feedName}" must match ${NAME_RE.source}`, 'feedName');
    if (await this.repo.find(input.name)) throw new AppError(ErrorCode.Conflict, `a job named "${input.name}" already exists`);
    if (!input.sourceConnectionId && !input.source) throw badInput('a source connection is required', 'source');
    const needsDest = type !== JobType.Subscribe;
    if (needsDest && !input.destinationConnectionId && !input.destination) throw badInput(`a ${type} job needs a destination connection`, 'destination');

    const created: string[] = [];
    try {
      const sourceId = input.sourceConnectionId ?? (created[created.length] = (await this.connections.create({ ...input.source!, name: input.source!.name ?? `${input.name}-src` })).id);
      const source = await this.connections.repo.get(sourceId);
      if (!source) throw notFound('connection', sourceId);
      if (!input.paused) await this.assertSourceReady(sourceId, source.kind, input);
      let destId: string | null = null;
      if (needsDest) {
        destId = input.destinationConnectionId ?? (created[created.length] = (await this.connections.create({ ...input.destination!, name: input.destination!.name ?? `${input.name}-dest` })).id);
        if (!(await this.connections.repo.get(destId))) throw notFound('connection', destId);
      }
      const spec = this.buildSpec(input, type, source.kind);
      // Column and row controls against the source's tables (a paused job's source may not be reachable yet).
      if (!input.paused) await checkControlsAtSource(spec.tables.schemas, await this.connections.repo.config(sourceId));
      (spec as JobSpec & { inlineConnections?: string[] }).inlineConnections = created;
      let row: JobRow;
      try {
        row = await this.repo.create({ name: input.name, type, status: JobStatus.Pending, sourceConnectionId: sourceId, destConnectionId: destId, spec, owner: principal?.name ?? null, feedName });
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError(ErrorCode.Conflict, `a job named "${input.name}" or a feed named "${feedName}" already exists`);
        throw err;
      }
      await this.repo.log(row.id, 'info', `job created (${type})`);
      if (input.paused) return row;
      return await this.start(row, [JobStatus.Pending]);
    } catch (err) {
      for (const id of created) await this.connections.repo.delete(id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The checks of testConnection, before a job is started: a source capture cannot read would answer RUNNING
   * and fail a moment later where the caller never looks. A job created paused skips this (fix the source, then resume).
   */
  private async assertSourceReady(connectionId: string, kind: 'mysql' | 'postgres', input: JobInputData): Promise<void> {
    const config = await this.connections.repo.config(connectionId);
    const r = await this.connections.check(config);
    const where = `${kind} source at ${config.host}:${config.port}`;
    if (!r.reachable) throw new AppError(ErrorCode.ConnectionFailed, `cannot connect to the ${where}: ${r.error}`, { host: config.host, port: config.port });
    const startsFromGtid = kind === 'mysql' && !!input.startPosition && startGtid(input.startPosition) !== undefined;
    const blocking = blockingRequirements(r.missing, startsFromGtid);
    if (blocking.length === 0) return;
    throw new AppError(ErrorCode.SourceNotReady,
      `the ${where} cannot be captured yet; missing: ${describeRequirements(blocking, config.user)}. Fix these and create the job again, or create it with paused: true and resume it once fixed`,
      { missing: blocking });
  }

  /** Move to running with a new run id and enqueue its tasks; they resume from checkpoints. */
  private async start(row: JobRow, from: JobStatus[]): Promise<JobRow> {
    const moved = await this.repo.transition(row.id, from, JobStatus.Running, { bumpRun: true, started: true, reason: null });
    if (!moved) throw new AppError(ErrorCode.InvalidState, `job ${row.name} is ${(await this.repo.get(row.id))?.status ?? 'gone'} and cannot be started`);
    await enqueueJobTasks(this.queues, this.repo, moved, async (name) => {
      const nodeHint = moved.spec.nodeHints?.[name] ?? null;
      return { ...(await this.placement(moved.owner, nodeHint)), nodeHint };
    });
    await this.repo.log(moved.id, 'info', `started (run ${moved.run_id})`);
    this.publishStatus(moved);
    return moved;
  }

  private publishStatus(row: JobRow): void {
    this.pubSub.publish(topicFor(Topic.JobEvents, row.id), jobStatusEvent(row) as never);
  }

  private abortTasks(row: JobRow): void {
    const msg: JobControlMessage = { jobId: row.id, runId: row.run_id, action: 'abort' };
    this.pubSub.publish(JOB_CONTROL_TOPIC, msg as never);
  }

  async pause(ref: string, reason = 'paused by request'): Promise<JobRow> {
    const row = await this.get(ref);
    const moved = await this.repo.transition(row.id, [JobStatus.Running, JobStatus.Pending], JobStatus.Paused, { bumpRun: true, reason });
    if (!moved) throw new AppError(ErrorCode.InvalidState, `job ${row.name} is ${row.status} and cannot be paused`);
    this.abortTasks(moved);
    await this.repo.log(moved.id, 'info', reason === 'paused by request' ? 'paused' : `paused: ${reason}`);
    this.publishStatus(moved);
    return moved;
  }

  async resume(ref: string): Promise<JobRow> {
    const row = await this.get(ref);
    if (![JobStatus.Paused, JobStatus.Failed, JobStatus.Pending].includes(row.status)) throw new AppError(ErrorCode.InvalidState, `job ${row.name} is ${row.status} and cannot be resumed`);
    return this.start(row, [JobStatus.Paused, JobStatus.Failed, JobStatus.Pending]);
  }

  async stop(ref: string): Promise<JobRow> {
    const row = await this.get(ref);
    const moved = await this.repo.transition(row.id, [JobStatus.Running, JobStatus.Pending, JobStatus.Paused, JobStatus.Failed], JobStatus.Canceled, { bumpRun: true, finished: true, reason: 'stopped by request' });
    if (!moved) {
      if (row.status === JobStatus.Canceled || row.status === JobStatus.Complete) return row;
      throw new AppError(ErrorCode.InvalidState, `job ${row.name} is ${row.status}`);
    }
    this.abortTasks(moved);
    await this.repo.log(moved.id, 'info', 'stopped');
    this.publishStatus(moved);
    return moved;
  }

  /**
   * Change lanes, limits or tables. Tables the new list adds are copied with
   * an incremental snapshot unless `snapshotNewTables` is false (so Udup's
   * PUT /v1/job/{id} with a longer ReplicateDoDb backfills them too).
   */
  async update(ref: string, input: Partial<Pick<JobInputData, 'parallelWorkers' | 'replChanBufferSize' | 'msgsLimit' | 'msgBytesLimit' | 'bytesLimit' | 'tables'>> & { snapshotNewTables?: boolean | null }, reason = 'updateJob'): Promise<JobRow> {
    const row = await this.get(ref);
    const spec: JobSpec = {
      ...row.spec,
      parallelWorkers: intIn(input.parallelWorkers, 'parallelWorkers', 1, 64, row.spec.parallelWorkers),
      replChanBufferSize: intIn(input.replChanBufferSize, 'replChanBufferSize', 1, 10_000_000, row.spec.replChanBufferSize),
      msgsLimit: intIn(input.msgsLimit, 'msgsLimit', 0, 1_000_000_000, row.spec.msgsLimit),
      msgBytesLimit: intIn(input.msgBytesLimit, 'msgBytesLimit', 0, 2_000_000_000, row.spec.msgBytesLimit),
      bytesLimit: intIn(input.bytesLimit, 'bytesLimit', 0, 2_000_000_000, row.spec.bytesLimit),
      tables: input.tables ? { ...row.spec.tables, schemas: input.tables.map((t) => toSelection(t, undefined)) } : row.spec.tables,
    };
    // Controls shape the destination's tables and the feed: changing them needs a new job (and a new copy).
    if (controlsText(spec.tables.schemas) !== controlsText(row.spec.tables.schemas)) {
      throw new AppError(ErrorCode.InvalidState, 'column and row controls (columns, where) cannot change on an existing job: create a new job with the new controls', { field: 'tables' });
    }
    if (spec.parallelWorkers !== row.spec.parallelWorkers) {
      throw new AppError(ErrorCode.InvalidState, 'parallelWorkers cannot change after creation: lane checkpoints are per lane');
    }
    const updated = (await this.repo.update(row.id, { spec }))!;
    await this.repo.log(row.id, 'info', 'spec updated');
    let result = updated;
    if (updated.status === JobStatus.Running) {
      // Restart the tasks so they pick up the new spec; they resume from their checkpoints.
      const paused = await this.repo.transition(row.id, [JobStatus.Running], JobStatus.Paused, { bumpRun: true });
      if (paused) { this.abortTasks(paused); result = await this.start(paused, [JobStatus.Paused]); }
    }
    const added = addedTables(row.spec.tables, spec.tables);
    if (added.length === 0 || input.snapshotNewTables === false || row.type === JobType.Migration) return result;
    if ([JobStatus.Canceled, JobStatus.Complete].includes(result.status)) return result;
    return this.queueSnapshot(result, added, undefined, reason);
  }

  /**
   * Copy tables again while the job streams (incremental snapshot, watermark
   * method: docs/consistency.md). The request is stored next to the feed and
   * run by the job's capture task, which resumes it after a restart.
   */
  async snapshotTables(ref: string, tables: TableChoice[], where?: string | null): Promise<JobRow> {
    const row = await this.get(ref);
    if (row.type === JobType.Migration) throw badInput('a migration job ends with its catch-up: incremental snapshots are for streaming jobs', 'jobId');
    if ([JobStatus.Canceled, JobStatus.Complete].includes(row.status)) throw new AppError(ErrorCode.InvalidState, `job ${row.name} is ${row.status}`);
    if (tables.length === 0) throw badInput('tables must name at least one schema', 'tables');
    for (const t of tables) {
      for (const name of t.tables?.length ? t.tables : [null]) {
        if (name !== null && !matchesFilter(row.spec.tables, t.schema, name)) throw badInput(`${t.schema}.${name} is not captured by job ${row.name}: use addTables`, 'tables');
        if (name === null && row.spec.tables.schemas.length > 0 && !row.spec.tables.schemas.some((s) => s.schema === t.schema)) throw badInput(`schema ${t.schema} is not captured by job ${row.name}: use addTables`, 'tables');
      }
    }
    // A `where` the copy could not honour is refused now, not by a request that fails later.
    if (where?.trim() && row.source_connection_id) {
      await checkSnapshotWhere(where, tables, (schema, table) => matchesFilter(row.spec.tables, schema, table), await this.connections.repo.config(row.source_connection_id));
    }
    return this.queueSnapshot(row, tables, where ?? undefined, 'snapshotTables');
  }

  /**
   * Capture more tables (PostgreSQL: added to the publication; MariaDB: the
   * binlog filter) and, with `snapshot`, copy their rows while the others keep
   * streaming. The tasks restart from their checkpoints with the new filter.
   */
  async addTables(ref: string, tables: TableChoice[], snapshot = true): Promise<JobRow> {
    const row = await this.get(ref);
    if (tables.length === 0) throw badInput('tables must name at least one schema', 'tables');
    let updated = row;
    if (row.spec.tables.schemas.length > 0) {
      const schemas = row.spec.tables.schemas.map((s) => ({ schema: s.schema, tables: s.tables ? [...s.tables] : undefined }));
      for (const t of tables) {
        const have = schemas.find((s) => s.schema === t.schema);
        if (!have) { schemas.push({ schema: t.schema, tables: t.tables?.length ? [...t.tables] : undefined }); continue; }
        if (!have.tables?.length) continue; // the whole schema is captured already
        if (!t.tables?.length) { have.tables = undefined; continue; }
        for (const name of t.tables) if (!have.tables.includes(name)) have.tables.push(name);
      }
      const before = updated.progress.incrementalSnapshot?.id;
      updated = await this.update(row.id, { tables: schemas.map((s) => ({ schema: s.schema, tables: s.tables ?? null })), snapshotNewTables: snapshot }, 'addTables');
      // The update copied what the list gained; tables it already had are not copied again.
      if (updated.progress.incrementalSnapshot?.id !== before) return updated;
    }
    if (!snapshot || row.type === JobType.Migration) return updated;
    return this.queueSnapshot(updated, tables, undefined, 'addTables');
  }

  /** Stop capturing tables (PostgreSQL: dropped from the publication). Rows already at the destination stay. */
  async removeTables(ref: string, tables: TableChoice[]): Promise<JobRow> {
    const row = await this.get(ref);
    if (row.spec.tables.schemas.length === 0) throw badInput(`job ${row.name} captures every table: give it a table list (updateJob) before removing some`, 'tables');
    let schemas = row.spec.tables.schemas.map((s) => ({ schema: s.schema, tables: s.tables ? [...s.tables] : undefined }));
    for (const t of tables) {
      if (!t.tables?.length) { schemas = schemas.filter((s) => s.schema !== t.schema); continue; }
      const have = schemas.find((s) => s.schema === t.schema);
      if (!have) continue;
      if (!have.tables?.length) throw badInput(`job ${row.name} captures the whole schema ${t.schema}: list its tables (updateJob) before removing some`, 'tables');
      have.tables = have.tables.filter((n) => !t.tables!.includes(n));
      if (have.tables.length === 0) schemas = schemas.filter((s) => s !== have);
    }
    if (schemas.length === 0) throw badInput('removing these tables would leave the job capturing nothing: stop or delete it instead', 'tables');
    return this.update(row.id, { tables: schemas.map((s) => ({ schema: s.schema, tables: s.tables ?? null })) });
  }

  private async queueSnapshot(row: JobRow, tables: TableChoice[], where: string | undefined, reason: string): Promise<JobRow> {
    if (where !== undefined) {
      try {
        validateSelect(`SELECT * FROM t WHERE ${where}`, (await this.connections.repo.config(row.source_connection_id!)).kind === 'postgres' ? 'postgres' : 'mysql');
      } catch (err) {
        throw badInput(`where "${where}" cannot be parsed: ${(err as Error).message}`, 'where');
      }
    }
    const filter = { schemas: tables.map((t) => ({ schema: t.schema, tables: t.tables?.length ? [...t.tables] : undefined })) };
    const req = newIncrementalRequest(filter, where, reason, row.run_id);
    await new IncrementalRequestStore(this.redis, this.feedPrefix, row.id).save(req);
    await this.repo.mergeProgress(row.id, { incrementalSnapshot: incrementalProgress(req) });
    await this.repo.log(row.id, 'info', `${reason}: incremental snapshot ${req.id} of ${incrementalProgress(req).tables.join(', ')}${where ? ` where ${where}` : ''} requested`);
    const fresh = (await this.repo.get(row.id)) ?? row;
    this.pubSub.publish(topicFor(Topic.JobEvents, row.id), jobStatusEvent(fresh, 'progress', 'incremental snapshot requested') as never);
    return fresh;
  }

  /** Stop, drop the source's slot/publication and the feed, remove the job (and connections it created inline). */
  async delete(ref: string): Promise<void> {
    const row = await this.get(ref);
    const stopped = (await this.repo.transition(row.id, [JobStatus.Running, JobStatus.Pending, JobStatus.Paused, JobStatus.Failed, JobStatus.Complete], JobStatus.Canceled, { bumpRun: true, finished: true, reason: 'deleted' })) ?? row;
    this.abortTasks(stopped);
    await this.dropSource(row).catch(() => undefined); // source unreachable: nothing we can drop now
    if (row.feed_name) {
      const feed = openFeed(this.redis, row.feed_name, { prefix: this.feedPrefix });
      await feed.destroy().catch(() => undefined);
      await (feed as unknown as { close?: () => Promise<void> }).close?.();
    }
    await new IncrementalRequestStore(this.redis, this.feedPrefix, row.id).clear().catch(() => undefined);
    await this.repo.delete(row.id);
    for (const id of (row.spec as JobSpec & { inlineConnections?: string[] }).inlineConnections ?? []) {
      await this.connections.repo.delete(id).catch(() => undefined);
    }
    this.pubSub.publish(topicFor(Topic.JobEvents, row.id), { jobId: row.id, kind: 'status', status: JobStatus.Canceled, message: 'deleted', at: new Date().toISOString() } as never);
  }

  /**
   * Stop the job and drop its source's replication slot and publication
   * (PostgreSQL; a MariaDB capture holds nothing on the source), keeping the
   * job (canceled) and its feed readable. changeserver's "drop the slot at
   * exit after /markdown". Throws when the source cannot be reached.
   */
  async dropCapture(ref: string): Promise<void> {
    const row = await this.get(ref);
    const stopped = await this.repo.transition(row.id, [JobStatus.Running, JobStatus.Pending, JobStatus.Paused, JobStatus.Failed, JobStatus.Complete], JobStatus.Canceled, { bumpRun: true, finished: true, reason: 'capture dropped' });
    if (stopped) {
      this.abortTasks(stopped);
      await this.repo.log(stopped.id, 'info', 'stopped; replication slot dropped');
      this.publishStatus(stopped);
    }
    await this.dropSource(row);
  }

  private async dropSource(row: JobRow): Promise<void> {
    if (!row.source_connection_id) return;
    const capture = createCapture({ connection: await this.connections.repo.config(row.source_connection_id), jobId: row.id, tables: row.spec.tables, logger: silentLogger });
    try {
      // Give the aborted capture a moment to release the slot before dropping it.
      await new Promise((r) => setTimeout(r, 300));
      await capture.drop();
    } finally {
      await capture.close().catch(() => undefined);
    }
  }

  /** Current status, then live events until the subscriber leaves. */
  /** Status, then live events. An unknown job is NOT_FOUND here, before the stream starts (inside a generator it surfaced mid-stream, uncoded). */
  async events(ref: string): Promise<AsyncGenerator<unknown>> {
    const row = await this.get(ref);
    return this.eventStream(row.id);
  }

  private async *eventStream(id: string): AsyncGenerator<unknown> {
    const live = this.pubSub.subscribe(topicFor(Topic.JobEvents, id)) as AsyncIterable<unknown>;
    yield* currentThenLive(live, async () => {
      const now = await this.repo.get(id);
      return now ? jobStatusEvent(now) : undefined;
    });
  }
}
