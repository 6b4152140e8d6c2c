/**
 * The Debezium-style connection service on real capture: a connection named
 * by an environment id, captured by a `subscribe` job whose feed has that
 * name, and cached queries on it kept fresh by upkeep tasks on workers.
 *
 * A second createDatabaseConnection with the same environmentId is
 * idempotent when the connection string names the same database as the
 * stored one (same kind, host, port, user, password, database): it answers
 * the existing connection and job (`created: false`). Otherwise it is a
 * CONFLICT naming the existing ids.
 */
import type { Queue } from 'bullmq';
import { AppError, ErrorCode, badInput, notFound } from '../errors.ts';
import type { Principal } from '../auth/roles.ts';
import { Topic, topicFor, type AppPubSub } from '../events/pubsub.ts';
import { currentThenLive } from '../events/live.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import { QueueName, SHARED_POOL } from '../queues/queue-names.ts';
import { TaskOptions } from '../queues/task-enqueue.ts';
import type { JobTaskPayload } from '../queues/task-payloads.ts';
import type { CachedQueryPlan } from '../queues/processors/cached-query.processor.ts';
import type { ConnectionRow } from '../store/connection.repo.ts';
import type { CachedQueryRepo, CachedQueryRow } from '../store/cached-query.repo.ts';
import type { JobRow } from '../store/job.repo.ts';
import type { ConnectionService, ConnectionInputData } from './connection.service.ts';
import type { JobService } from './job.service.ts';
import { JobType } from '../domain/job-model.ts';
import { parseConnectionString } from './connection-string.ts';
import { parsePrismaSchema } from '../replication/cached-query/prisma-schema.ts';
import { analyze, checkAgainstSchema, validateSelect, type SqlDialect } from '../replication/cached-query/query-plan.ts';
import { QueryRefusedError, RefusalCode } from '../replication/cached-query/query-errors.ts';
import { incrementalBlocker } from '../replication/cached-query/incremental-engine.ts';
import { openSourceSession, SourceQueryError } from '../replication/cached-query/source-session.ts';
import { TaskKind, TaskState } from '../domain/task-model.ts';

const ENV_RE = /^[A-Za-z0-9_.-]{1,120}$/;

export interface EnvironmentConnection {
  environmentId: string;
  connection: ConnectionRow;
  job: JobRow;
  /** false when an identical connection already existed (idempotent repeat). */
  created: boolean;
}

export interface CachedQueryCreated {
  query: CachedQueryRow;
  connection: EnvironmentConnection;
}

export interface JobStatusReport {
  environmentId: string;
  connection: { id: string; kind: string; host: string; port: number; database: string | null };
  capture: { jobId: string; name: string; status: string; phase: string | null; error: string | null; feed: string | null; changesCaptured: number; capturedSequence: string | null; tasks: { kind: string; name: string; status: string; error: string | null }[] };
  cachedQueries: { id: string; status: string; mode: string; version: number; refreshedAt: string | null; error: string | null; sql: string }[];
}

export interface CachedQueryServiceOptions {
  connections: ConnectionService;
  jobs: JobService;
  repo: CachedQueryRepo;
  queues: QueueSet;
  pubSub: AppPubSub;
  /** Statement timeout for checking a query on the source at creation. Default 10000 ms. */
  checkTimeoutMs?: number;
}

function refusal(err: unknown): never {
  if (err instanceof QueryRefusedError) throw new AppError(ErrorCode.BadUserInput, err.message, { reason: err.code, field: err.code === RefusalCode.BadSchema ? 'schema' : 'sqlQuery' });
  if (err instanceof SourceQueryError) throw new AppError(ErrorCode.BadUserInput, `the source rejects sqlQuery: ${err.message}`, { reason: 'SOURCE_REJECTED', field: 'sqlQuery' });
  throw err;
}

export class CachedQueryService {
  constructor(private readonly o: CachedQueryServiceOptions) {}

  get repo(): CachedQueryRepo { return this.o.repo; }

  private queue(): Queue { return this.o.queues.get(QueueName.Tasks); }

  private validEnv(environmentId: string): string {
    if (!environmentId || !ENV_RE.test(environmentId)) throw badInput(`environmentId must match ${ENV_RE.source}`, 'environmentId');
    return environmentId;
  }

  private async sameTarget(row: ConnectionRow, input: ConnectionInputData): Promise<boolean> {
    const c = await this.o.connections.repo.config(row.id);
    return c.kind === input.kind && c.host === input.host && c.port === input.port && c.user === input.user && c.password === input.password && (c.database ?? null) === (input.database ?? null);
  }

  /** The connection and capture job of an environment, or NOT_FOUND. */
  async environment(environmentId: string): Promise<{ connection: ConnectionRow; job: JobRow | undefined }> {
    const connection = await this.o.connections.repo.byEnvironment(this.validEnv(environmentId));
    if (!connection) throw new AppError(ErrorCode.NotFound, `no database connection for environmentId "${environmentId}"`, { what: 'environment', id: environmentId });
    const job = (await this.o.jobs.repo.find(environmentId)) ?? undefined;
    return { connection, job: job && job.source_connection_id === connection.id ? job : undefined };
  }

  async createDatabaseConnection(connectionString: string, environmentId: string, principal?: Principal): Promise<EnvironmentConnection> {
    this.validEnv(environmentId);
    const input = parseConnectionString(connectionString);
    const existing = await this.o.connections.repo.byEnvironment(environmentId);
    if (existing) {
      const job = await this.o.jobs.repo.find(environmentId);
      if (job && (await this.sameTarget(existing, input))) return { environmentId, connection: existing, job, created: false };
      throw new AppError(ErrorCode.Conflict, `environmentId "${environmentId}" already has a database connection${job ? '' : ' (without capture)'} to a different database: delete it first`, { connectionId: existing.id, jobId: job?.id ?? null });
    }
    const connection = await this.o.connections.create({ ...input, name: `env-${environmentId}`, environmentId });
    try {
      const tables = input.kind === 'mysql' && input.database ? [{ schema: input.database }] : [];
      const job = await this.o.jobs.create({ name: environmentId, type: JobType.Subscribe, sourceConnectionId: connection.id, feedName: environmentId, tables }, principal);
      return { environmentId, connection, job, created: true };
    } catch (err) {
      await this.o.connections.repo.delete(connection.id).catch(() => undefined);
      throw err;
    }
  }

  async createCachedQuery(input: { connectionString?: string | null; environmentId: string; schema?: string | null; sqlQuery: string }, principal?: Principal): Promise<CachedQueryCreated> {
    this.validEnv(input.environmentId);
    if (!input.sqlQuery || !input.sqlQuery.trim()) throw badInput('sqlQuery is required', 'sqlQuery');
    // Validate before touching anything: a refused query creates nothing.
    const kind = input.connectionString ? parseConnectionString(input.connectionString).kind : (await this.o.connections.repo.byEnvironment(input.environmentId))?.kind;
    if (!kind) throw new AppError(ErrorCode.NotFound, `no database connection for environmentId "${input.environmentId}": send connectionString or call createDatabaseConnection first`, { what: 'environment', id: input.environmentId });
    const dialect: SqlDialect = kind;
    let ast; let analyzed;
    try {
      ast = validateSelect(input.sqlQuery, dialect);
      if (input.schema && input.schema.trim()) checkAgainstSchema(input.sqlQuery, dialect, ast, parsePrismaSchema(input.schema));
      analyzed = analyze(input.sqlQuery, dialect, ast);
    } catch (err) { refusal(err); }

    const env = input.connectionString
      ? await this.createDatabaseConnection(input.connectionString, input.environmentId, principal)
      : await (async () => { const e = await this.environment(input.environmentId); if (!e.job) throw new AppError(ErrorCode.InvalidState, `environment "${input.environmentId}" has no capture job`); return { environmentId: input.environmentId, connection: e.connection, job: e.job, created: false }; })();

    const source = openSourceSession(await this.o.connections.repo.config(env.connection.id), this.o.checkTimeoutMs ?? 10_000);
    let plan: CachedQueryPlan; let mode: 'incremental' | 'rerun'; let reason: string | undefined;
    try {
      const tables = [];
      for (const t of analyzed!.tables) {
        const found = await source.resolveTable(t.schema, t.name);
        if (!found) throw new AppError(ErrorCode.BadUserInput, `sqlQuery reads table "${t.schema ? `${t.schema}.` : ''}${t.name}", which the source database does not have`, { reason: RefusalCode.UnknownTable, field: 'sqlQuery' });
        tables.push(found);
      }
      await source.explain(input.sqlQuery);
      plan = { dialect, tables: tables.map((t) => ({ schema: t.schema, table: t.table })) };
      const blocker = analyzed!.shape ? incrementalBlocker(analyzed!.shape, tables[0]!) : analyzed!.rerunReason;
      mode = blocker ? 'rerun' : 'incremental';
      reason = blocker ? `re-run on every change because ${blocker}` : undefined;
    } catch (err) {
      refusal(err);
    } finally {
      await source.close();
    }
    const query = await this.o.repo.create({ connectionId: env.connection.id, jobId: env.job.id, environmentId: input.environmentId, sql: input.sqlQuery.trim().replace(/;\s*$/, ''), mode, modeReason: reason, plan: plan as unknown as Record<string, unknown> });
    await this.startTask(query, env.job);
    return { query, connection: env };
  }

  private async startTask(q: CachedQueryRow, job: JobRow): Promise<void> {
    const task = await this.o.jobs.repo.upsertTask({ jobId: job.id, kind: TaskKind.CachedQuery, name: `cached-query ${q.id}`, status: TaskState.Queued, queue: QueueName.Tasks, placement: SHARED_POOL });
    const payload: JobTaskPayload = { kind: TaskKind.CachedQuery, taskId: task.id, jobId: job.id, runId: job.run_id, detail: { cachedQueryId: q.id } };
    await this.queue().add(TaskKind.CachedQuery, payload, { ...TaskOptions.replication, jobId: `cq-${q.id}` });
  }

  /** Cached queries (their upkeep tasks end within seconds), the capture (slot/binlog reader and feed) and the connection. */
  async deleteDatabaseConnection(connectionString: string | null | undefined, environmentId: string): Promise<{ environmentId: string; connectionId: string; jobId: string | null; cachedQueries: number }> {
    const { connection, job } = await this.environment(environmentId);
    if (connectionString) {
      const input = parseConnectionString(connectionString);
      const c = await this.o.connections.repo.config(connection.id);
      if (c.kind !== input.kind || c.host !== input.host || c.port !== input.port || (c.database ?? null) !== (input.database ?? null)) {
        throw new AppError(ErrorCode.Conflict, `connectionString names a different database than environmentId "${environmentId}"'s connection`, { connectionId: connection.id });
      }
    }
    const queries = await this.o.repo.list({ connectionId: connection.id });
    const n = await this.o.repo.deleteForConnection(connection.id);
    for (const q of queries) await this.queue().remove(`cq-${q.id}`).catch(() => undefined);
    if (job) await this.o.jobs.delete(job.id);
    await this.o.connections.delete(connection.id);
    return { environmentId, connectionId: connection.id, jobId: job?.id ?? null, cachedQueries: n };
  }

  async status(environmentId: string): Promise<JobStatusReport> {
    const { connection, job } = await this.environment(environmentId);
    if (!job) throw new AppError(ErrorCode.InvalidState, `environment "${environmentId}" has no capture job`);
    const tasks = await this.o.jobs.repo.tasksOf([job.id]);
    const queries = await this.o.repo.list({ connectionId: connection.id });
    return {
      environmentId,
      connection: { id: connection.id, kind: connection.kind, host: connection.host, port: connection.port, database: connection.database },
      capture: {
        jobId: job.id, name: job.name, status: job.status, phase: (job.progress as { phase?: string }).phase ?? null, error: job.error, feed: job.feed_name,
        changesCaptured: Number(job.metrics.changesCaptured ?? 0), capturedSequence: (job.metrics as { capturedSequence?: string }).capturedSequence ?? null,
        tasks: tasks.filter((t) => t.kind !== TaskKind.CachedQuery).map((t) => ({ kind: t.kind, name: t.name, status: t.status, error: t.error })),
      },
      cachedQueries: queries.map((q) => ({ id: q.id, status: q.status, mode: q.mode, version: Number(q.version), refreshedAt: q.refreshed_at?.toISOString() ?? null, error: q.error, sql: q.sql })),
    };
  }

  /** The cached query, or undefined. */
  find(id: string): Promise<CachedQueryRow | undefined> { return this.o.repo.get(id); }

  async get(id: string): Promise<CachedQueryRow> {
    const row = await this.o.repo.get(id);
    if (!row) throw notFound('cached query', id);
    return row;
  }

  list(environmentId?: string | null): Promise<CachedQueryRow[]> {
    return this.o.repo.list({ environmentId: environmentId ?? undefined });
  }

  /** The current result (when there is one), then every new one until the subscriber leaves. */
  /** The current result, then each new one. An unknown id is NOT_FOUND here, before the stream starts (inside a generator it surfaced mid-stream, uncoded). */
  async results(id: string): Promise<AsyncGenerator<unknown>> {
    const row = await this.get(id);
    return this.resultStream(row.id);
  }

  private async *resultStream(id: string): AsyncGenerator<unknown> {
    const live = this.o.pubSub.subscribe(topicFor(Topic.CachedQueryResult, id)) as AsyncIterable<unknown>;
    yield* currentThenLive(live, async () => {
      const now = await this.o.repo.get(id);
      if (!now?.rows || !now.refreshed_at) return undefined;
      return { id: now.id, version: Number(now.version), refreshedAt: now.refreshed_at.toISOString(), columns: now.columns, rows: now.rows, changedRows: now.rows, removedRows: [] };
    });
  }

}
