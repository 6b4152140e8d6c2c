/**
 * Pipelines: submit a DAG (validated by domain/pipeline-dsl.ts), stop it, query
 * jobs and tasks with FATE-Flow's filters, tracking (metrics, parameters,
 * component definition and state, output samples), the DAG dependency view,
 * and versioned pipeline definitions ("models"). See domain/pipeline-model.ts for
 * the state machine; components run in src/queues/processors/component.processor.ts.
 */
import type { JobRepo, JobRow, TaskRow } from '../store/job.repo.ts';
import type { PipelineRepo, ModelRow } from '../store/pipeline.repo.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import { QueueName, SHARED_POOL } from '../queues/queue-names.ts';
import { TaskKind, TaskState, UNSTARTED_TASK_STATES } from '../domain/task-model.ts';
import { enqueueReady } from '../queues/pipeline-scheduler.ts';
import { Topic, topicFor, type AppPubSub } from '../events/pubsub.ts';
import { AppError, ErrorCode, badInput, notFound } from '../errors.ts';
import type { Principal } from '../auth/roles.ts';
import { DEFAULT_SPEC, JobStatus, JobType, type JobSpec } from '../domain/job-model.ts';
import { jobStatusEvent } from '../domain/job-views.ts';
import { JOB_CONTROL_TOPIC, type JobControlMessage } from './job.service.ts';
import { dagDependency, planDag, tableParam } from '../domain/pipeline-dsl.ts';
import { transformSyntax } from '../replication/transform/parameter-syntax.ts';
import type { DbConnectionConfig } from '../replication/connection-config.ts';
import { silentLogger } from '../replication/logger.ts';
import { dropStreamCapture, prepareStreamCapture, type StreamCaptureDetail } from '../replication/pipeline/stream-capture.ts';
import { DEFAULT_STAGE_MAX_ROWS, MAX_STAGE_ROWS, PipelineKind, PipelineModule, type DagDependency, type PipelineSpecData, type PlannedComponent, pipelineOf } from '../domain/pipeline-model.ts';
import { UniqueViolationError } from '../store/store-errors.ts';
import type { FateVocabulary } from './legacy-vocabulary.ts';

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** A data problem (a table or namespace that does not exist, a bad file): FATE's DATA_ERROR. */
export function dataError(message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError(ErrorCode.BadUserInput, message, { category: 'data', ...details });
}

export interface PipelineView {
  id: string;
  jobId: string;
  name: string;
  kind: PipelineKind;
  description: string;
  tag: string;
  role: string;
  partyId: string;
  roles: Record<string, unknown>;
  initiatorRole: string;
  initiatorPartyId: string;
  isInitiator: boolean;
  dsl: unknown;
  runtimeConf: unknown;
  runIp: string;
  status: JobStatus;
  fateStatus: string;
  statusReason: string | null;
  error: string | null;
  currentSteps: string[];
  currentTasks: string[];
  progress: number;
  createTime: number;
  updateTime: number;
  startTime: number | null;
  endTime: number | null;
  elapsed: number | null;
  row: JobRow;
}

export interface TaskView {
  taskId: string;
  jobId: string;
  componentName: string;
  module: string;
  status: string;
  fateStatus: string;
  role: string;
  partyId: string;
  runIp: string | null;
  attempts: number;
  error: string | null;
  progress: Record<string, unknown>;
  createTime: number;
  updateTime: number;
  startTime: number | null;
  endTime: number | null;
  elapsed: number | null;
}

/** Every filter of FATE's /v1/job/query (and /v1/job/task/query). Absent = any. */
export interface PipelineFilter {
  jobId?: string | null; name?: string | null; description?: string | null; tag?: string | null; role?: string | null;
  partyId?: string | null; roles?: unknown; initiatorPartyId?: string | null; isInitiator?: boolean | null; dsl?: unknown;
  runtimeConf?: unknown; runIp?: string | null; status?: string | null; currentSteps?: unknown; currentTasks?: unknown;
  progress?: number | null; createTime?: number | null; updateTime?: number | null; startTime?: number | null; endTime?: number | null;
  elapsed?: number | null;
  /** Tasks only. */
  componentName?: string | null; taskId?: string | null;
}

export interface SubmitInput { dsl: unknown; runtimeConf: unknown }

const ms = (d: Date | null | undefined) => (d ? d.getTime() : null);

function confString(conf: Record<string, unknown>, path: string[]): string {
  let v: unknown = conf;
  for (const p of path) v = isObject(v) ? v[p] : undefined;
  return v === undefined || v === null ? '' : String(v);
}

/** JSON given as text or as a value, compared structurally. */
function sameJson(filter: unknown, value: unknown): boolean {
  let f = filter;
  if (typeof f === 'string') { try { f = JSON.parse(f); } catch { return f === value; } }
  return JSON.stringify(canonical(f)) === JSON.stringify(canonical(value));
}
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (isObject(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  return v;
}

/** Percent done: components complete; for a data job, rows moved of the rows to move. */
function progressOf(row: JobRow, spec: PipelineSpecData, ts: TaskRow[], done: number): number {
  if (row.status === JobStatus.Complete) return 100;
  const p = ts[0]?.progress as { rowsOut?: number; total?: number } | undefined;
  if (spec.kind !== PipelineKind.Dag && p?.total) return Math.min(99, Math.floor(((p.rowsOut ?? 0) / p.total) * 100));
  return ts.length ? Math.floor((done / ts.length) * 100) : 0;
}

export class PipelineService {
  constructor(
    readonly jobs: JobRepo,
    readonly repo: PipelineRepo,
    private readonly queues: QueueSet,
    private readonly pubSub: AppPubSub,
    /** FATE-Flow's words: job ids, statuses and status filters (rest-compat/fate-flow/fate-flow.dialect.ts). */
    private readonly fate: FateVocabulary,
  ) {}

  // ------------------------------------------------------------ submit, stop

  /** Validate the DSL and runtime conf, check every Reader/Writer namespace, create the job and enqueue its roots. */
  async submit(input: SubmitInput, principal?: Principal, model?: PipelineSpecData['model']): Promise<PipelineView> {
    if (input.dsl === undefined || input.dsl === null) throw badInput('job_dsl is required', 'job_dsl');
    if (input.runtimeConf === undefined || input.runtimeConf === null) throw badInput('job_runtime_conf is required', 'job_runtime_conf');
    const components = planDag(input.dsl, input.runtimeConf, transformSyntax);
    const captures: { name: string; conn: DbConnectionConfig; at: { schema: string; table: string } }[] = [];
    for (const c of components) {
      if (c.module !== PipelineModule.Reader && c.module !== PipelineModule.Writer && c.module !== PipelineModule.Capture) continue;
      const t = tableParam(c.parameters, c.name);
      const ns = await this.repo.resolveNamespace(t.namespace);
      if (!ns) {
        throw dataError(`component ${c.name}: namespace "${t.namespace}" is neither a connection nor a database of one`, { component: c.name });
      }
      if (c.module === PipelineModule.Capture) captures.push({ name: c.name, conn: await this.repo.connectionConfig(ns.connection.id), at: { schema: ns.schema, table: t.name } });
    }
    const spec = this.specFor(PipelineKind.Dag, input.dsl, input.runtimeConf, components, model);
    // A Capture's start is fixed now (slot created, binlog position read): every change committed after submit answers is streamed.
    const prepared: Record<string, Record<string, unknown>> = {};
    try {
      for (const c of captures) {
        try {
          prepared[c.name] = { ...(await prepareStreamCapture(c.conn, c.at, silentLogger)) };
        } catch (err) {
          throw dataError(`component ${c.name}: cannot capture ${c.at.schema}.${c.at.table}: ${(err as Error).message}`, { component: c.name });
        }
      }
      return await this.launch(spec, TaskKind.Component, principal, prepared);
    } catch (err) {
      for (const c of captures) {
        const d = prepared[c.name] as unknown as StreamCaptureDetail | undefined;
        if (d) await dropStreamCapture(c.conn, d, c.at, silentLogger).catch(() => undefined);
      }
      throw err;
    }
  }

  specFor(kind: PipelineKind, dsl: unknown, runtimeConf: unknown, components: PlannedComponent[], model?: PipelineSpecData['model'], extra: Partial<PipelineSpecData> = {}): PipelineSpecData {
    const conf = isObject(runtimeConf) ? runtimeConf : {};
    const initiatorRole = confString(conf, ['initiator', 'role']) || 'local';
    const initiatorPartyId = confString(conf, ['initiator', 'party_id']) || '0';
    const common = isObject(conf.job_parameters) && isObject(conf.job_parameters.common) ? conf.job_parameters.common : isObject(conf.job_parameters) ? conf.job_parameters : {};
    const timeout = Number(common.timeout ?? 0);
    const stage = Number(common.stage_max_rows ?? DEFAULT_STAGE_MAX_ROWS);
    if (!Number.isInteger(stage) || stage < 1 || stage > MAX_STAGE_ROWS) throw badInput(`job_parameters.common.stage_max_rows must be an integer between 1 and ${MAX_STAGE_ROWS}`, 'job_runtime_conf');
    return {
      kind, dsl, runtimeConf, components,
      description: confString(conf, ['job_parameters', 'common', 'description']) || String(conf.description ?? ''),
      tag: String(conf.tag ?? ''),
      role: initiatorRole,
      partyId: initiatorPartyId,
      roles: isObject(conf.role) ? conf.role : { [initiatorRole]: [initiatorPartyId] },
      initiatorRole, initiatorPartyId,
      timeoutSeconds: timeout > 0 ? timeout : undefined,
      stageMaxRows: stage,
      model,
      ...extra,
    };
  }

  /** Create the job (running, run 1), one waiting task per component, and enqueue the roots. */
  async launch(spec: PipelineSpecData, kind: TaskKind.Component | TaskKind.DataLoad | TaskKind.DataExport, principal?: Principal, taskDetail: Record<string, Record<string, unknown>> = {}): Promise<PipelineView> {
    const jobSpec = { ...DEFAULT_SPEC, tables: { schemas: [] }, snapshot: false, pipeline: spec } as unknown as JobSpec;
    let row: JobRow | undefined;
    for (let attempt = 0; !row; attempt++) {
      try {
        row = await this.jobs.create({ name: this.fate.newJobId(), type: JobType.Pipeline, status: JobStatus.Pending, spec: jobSpec, owner: principal?.name ?? null });
      } catch (err) {
        if (!(err instanceof UniqueViolationError) || attempt > 5) throw err;
      }
    }
    for (const c of spec.components) {
      await this.jobs.upsertTask({ jobId: row.id, kind, name: c.name, status: TaskState.Waiting, queue: QueueName.Tasks, placement: SHARED_POOL, detail: { module: c.module, upstream: c.upstream, ...taskDetail[c.name] } });
    }
    const moved = await this.jobs.transition(row.id, [JobStatus.Pending], JobStatus.Running, { bumpRun: true, started: true });
    if (!moved) throw new AppError(ErrorCode.InvalidState, `job ${row.name} could not start`);
    await this.jobs.mergeProgress(moved.id, { chunksDone: 0, chunksTotal: spec.components.length });
    await this.jobs.log(moved.id, 'info', `${spec.kind} job submitted: ${spec.components.map((c) => `${c.name}(${c.module})`).join(', ')}`);
    const roots = await enqueueReady(this.queues, this.jobs, moved, kind);
    await this.jobs.log(moved.id, 'info', `started ${roots.join(', ')}`);
    this.pubSub.publish(topicFor(Topic.JobEvents, moved.id), jobStatusEvent(moved) as never);
    return this.view(moved);
  }

  async stop(jobId: string, stopStatus: 'canceled' | 'failed' = 'canceled'): Promise<PipelineView> {
    const row = await this.get(jobId);
    const to = stopStatus === 'failed' ? JobStatus.Failed : JobStatus.Canceled;
    const moved = await this.jobs.transition(row.id, [JobStatus.Running, JobStatus.Pending, JobStatus.Paused], to, { bumpRun: true, finished: true, reason: 'stopped by request' });
    if (!moved) {
      if (row.status === to) return this.view(row);
      throw new AppError(ErrorCode.InvalidState, `job ${row.name} is ${this.fate.jobStatus(row.status, row.status_reason)} and cannot be stopped`);
    }
    const msg: JobControlMessage = { jobId: moved.id, runId: moved.run_id, action: 'abort' };
    this.pubSub.publish(JOB_CONTROL_TOPIC, msg as never);
    // Tasks no worker holds end now; a running one is canceled by its worker once it has really stopped
    // (the control message above, or its own check of the job). Nothing is applied after this point either
    // way: a Capture stream checks the job before it applies each transaction (capture-stream.ts).
    await this.jobs.moveTasks({ jobId: moved.id }, UNSTARTED_TASK_STATES, TaskState.Canceled);
    await this.repo.clearStage(moved.id);
    await this.jobs.log(moved.id, 'info', `stopped by request (${stopStatus})`);
    this.pubSub.publish(topicFor(Topic.JobEvents, moved.id), jobStatusEvent(moved) as never);
    return this.view(moved);
  }

  // ------------------------------------------------------------ queries

  async get(jobId: string): Promise<JobRow> {
    if (!jobId) throw badInput('job_id is required', 'job_id');
    const row = await this.jobs.find(jobId);
    if (!row || row.type !== JobType.Pipeline) throw notFound('job', jobId);
    return row;
  }

  async find(jobId: string): Promise<PipelineView | undefined> {
    const row = await this.jobs.find(jobId);
    return row && row.type === JobType.Pipeline ? this.view(row) : undefined;
  }

  async view(row: JobRow, tasks?: TaskRow[]): Promise<PipelineView> {
    const spec = pipelineOf(row);
    const ts = tasks ?? await this.jobs.tasksOf([row.id]);
    const done = ts.filter((t) => t.status === TaskState.Complete).length;
    const running = ts.filter((t) => t.status === TaskState.Running || t.status === TaskState.Queued);
    const conf = isObject(spec.runtimeConf) ? spec.runtimeConf : {};
    const name = confString(conf, ['job_parameters', 'common', 'job_name']) || String(conf.job_name ?? '');
    const start = ms(row.started_at);
    const end = ms(row.finished_at);
    return {
      id: row.id, jobId: row.name, name, kind: spec.kind, description: spec.description, tag: spec.tag,
      role: spec.role, partyId: spec.partyId, roles: spec.roles, initiatorRole: spec.initiatorRole, initiatorPartyId: spec.initiatorPartyId,
      isInitiator: true, dsl: spec.dsl, runtimeConf: spec.runtimeConf,
      runIp: [...new Set(ts.map((t) => t.node_id).filter(Boolean))].join(',') || '',
      status: row.status, fateStatus: this.fate.jobStatus(row.status, row.status_reason), statusReason: row.status_reason, error: row.error,
      currentSteps: running.map((t) => t.name), currentTasks: running.map((t) => t.id),
      progress: progressOf(row, spec, ts, done),
      createTime: row.created_at.getTime(), updateTime: row.updated_at.getTime(), startTime: start, endTime: end,
      elapsed: start === null ? null : (end ?? Date.now()) - start,
      row,
    };
  }

  /** Pipeline jobs matching every given filter, oldest first. */
  async query(f: PipelineFilter): Promise<PipelineView[]> {
    const status = f.status ? this.fate.statusesFor(f.status) : undefined;
    if (f.status && !status!.length) return [];
    let rows: JobRow[];
    if (f.jobId) {
      const one = await this.jobs.find(f.jobId);
      rows = one && one.type === JobType.Pipeline ? [one] : [];
    } else {
      rows = (await this.jobs.list({ type: [JobType.Pipeline], status }, 0, 10_000)).rows;
    }
    const tasks = await this.jobs.tasksOf(rows.map((r) => r.id));
    const views = await Promise.all(rows.map((r) => this.view(r, tasks.filter((t) => t.job_id === r.id))));
    return views.filter((v) => this.matches(v, f));
  }

  private matches(v: PipelineView, f: PipelineFilter): boolean {
    const eq = (a: unknown, b: unknown) => a === undefined || a === null || a === '' || String(a) === String(b);
    if (f.status && !(f.status.toLowerCase() === v.fateStatus || f.status.toLowerCase() === v.status)) return false;
    return eq(f.name, v.name) && eq(f.description, v.description) && eq(f.tag, v.tag) && eq(f.role, v.role)
      && eq(f.partyId, v.partyId) && eq(f.initiatorPartyId, v.initiatorPartyId) && eq(f.runIp, v.runIp)
      && (f.isInitiator === undefined || f.isInitiator === null || f.isInitiator === v.isInitiator)
      && (f.roles === undefined || f.roles === null || sameJson(f.roles, v.roles))
      && (f.dsl === undefined || f.dsl === null || sameJson(f.dsl, v.dsl))
      && (f.runtimeConf === undefined || f.runtimeConf === null || sameJson(f.runtimeConf, v.runtimeConf))
      && (f.currentSteps === undefined || f.currentSteps === null || sameJson(f.currentSteps, v.currentSteps))
      && (f.currentTasks === undefined || f.currentTasks === null || sameJson(f.currentTasks, v.currentTasks))
      && eq(f.progress, v.progress) && eq(f.createTime, v.createTime) && eq(f.updateTime, v.updateTime)
      && eq(f.startTime, v.startTime) && eq(f.endTime, v.endTime) && eq(f.elapsed, v.elapsed);
  }

  taskView(job: PipelineView, t: TaskRow): TaskView {
    const p = t.progress as { startedAt?: number; endedAt?: number };
    const start = p.startedAt ?? null;
    const end = p.endedAt ?? null;
    return {
      taskId: t.id, jobId: job.jobId, componentName: t.name, module: String((t.detail as { module?: string }).module ?? ''),
      status: t.status, fateStatus: this.fate.taskStatus(t.status), role: job.role, partyId: job.partyId, runIp: t.node_id,
      attempts: t.attempts, error: t.error, progress: t.progress,
      createTime: t.created_at.getTime(), updateTime: t.updated_at.getTime(), startTime: start, endTime: end,
      elapsed: start === null ? null : (end ?? Date.now()) - start,
    };
  }

  /** Tasks of the jobs matching the job filters, then the task's own (component, task id, status). */
  async tasks(f: PipelineFilter): Promise<TaskView[]> {
    const { status, componentName, taskId, ...jobFilter } = f;
    const jobs = await this.query(jobFilter);
    const rows = await this.jobs.tasksOf(jobs.map((j) => j.id));
    const out: TaskView[] = [];
    for (const j of jobs) {
      const order = pipelineOf(j.row).components.map((c) => c.name);
      const mine = rows.filter((t) => t.job_id === j.id).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
      for (const t of mine) {
        const v = this.taskView(j, t);
        if (componentName && v.componentName !== componentName) continue;
        if (taskId && v.taskId !== taskId) continue;
        if (status && status.toLowerCase() !== v.fateStatus && status.toLowerCase() !== v.status) continue;
        out.push(v);
      }
    }
    return out;
  }

  async logs(jobId: string, limit = 1000): Promise<{ at: Date; level: string; message: string }[]> {
    const row = await this.get(jobId);
    return this.jobs.logs(row.id, limit);
  }

  // ------------------------------------------------------------ tracking

  component(row: JobRow, name: string): PlannedComponent {
    if (!name) throw badInput('component_name is required', 'component_name');
    const c = pipelineOf(row).components.find((x) => x.name === name);
    if (!c) throw dataError(`job ${row.name} has no component "${name}"`, { component: name });
    return c;
  }

  async metrics(jobId: string, component: string) {
    const row = await this.get(jobId);
    this.component(row, component);
    return this.repo.metrics(row.id, component);
  }

  async outputs(jobId: string, component: string) {
    const row = await this.get(jobId);
    this.component(row, component);
    return this.repo.outputs(row.id, component);
  }

  /** Metrics of a component of a known job (by its uuid, no lookup). */
  metricsOf(jobUuid: string, component: string): ReturnType<PipelineRepo['metrics']> { return this.repo.metrics(jobUuid, component); }

  /** Outputs of a component of a known job (by its uuid, no lookup). */
  outputsOf(jobUuid: string, component: string): ReturnType<PipelineRepo['outputs']> { return this.repo.outputs(jobUuid, component); }

  /** The component's definition (module, inputs, outputs, parameters) and its state (task status and counters). */
  async componentState(jobId: string, component: string): Promise<{ definition: PlannedComponent; task: TaskView | undefined; job: PipelineView }> {
    const row = await this.get(jobId);
    const definition = this.component(row, component);
    const job = await this.view(row);
    const t = (await this.jobs.tasksOf([row.id])).find((x) => x.name === component);
    return { definition, task: t ? this.taskView(job, t) : undefined, job };
  }

  /** DAG dependency of a job, or of a DSL given directly (validated, not run). */
  async dependency(jobId?: string | null, dsl?: unknown, runtimeConf?: unknown): Promise<DagDependency> {
    if (jobId) {
      const row = await this.get(jobId);
      return dagDependency(pipelineOf(row).components);
    }
    if (dsl === undefined || dsl === null) throw badInput('job_id is required', 'job_id');
    return dagDependency(planDag(dsl, runtimeConf ?? {}, transformSyntax));
  }

  // ------------------------------------------------------------ models

  /** Validate and store a version of a pipeline definition; from a job's DSL and conf when `jobId` is given. */
  async loadModel(input: { namespace: string; name?: string | null; version?: string | null; dsl?: unknown; runtimeConf?: unknown; jobId?: string | null; description?: string | null }): Promise<ModelRow> {
    if (!input.namespace) throw badInput('model.namespace is required', 'namespace');
    let dsl = input.dsl;
    let conf = input.runtimeConf;
    if (input.jobId && (dsl === undefined || dsl === null)) {
      const spec = pipelineOf(await this.get(input.jobId));
      if (spec.kind !== PipelineKind.Dag) throw dataError(`job ${input.jobId} is a data ${spec.kind} job, not a pipeline`);
      dsl = spec.dsl; conf = spec.runtimeConf;
    }
    if (dsl === undefined || dsl === null) throw badInput('model.dsl (or model.job_id) is required', 'dsl');
    planDag(dsl, conf ?? {}, transformSyntax);
    const name = input.name || input.namespace;
    const version = input.version || this.fate.newJobId();
    if (!/^[A-Za-z0-9_.#-]{1,128}$/.test(version)) throw badInput('model version must match [A-Za-z0-9_.#-]{1,128}', 'version');
    try {
      return await this.repo.addModel({ namespace: input.namespace, name, version, dsl, runtimeConf: conf ?? {}, description: input.description, sourceJob: input.jobId });
    } catch (err) {
      if (err instanceof UniqueViolationError) throw new AppError(ErrorCode.Conflict, `model ${input.namespace}/${name} version ${version} already exists`, { category: 'operating' });
      throw err;
    }
  }

  /** Deploy a stored version (latest when none is named) as a running pipeline job. */
  async onlineModel(input: { namespace: string; name?: string | null; version?: string | null }, principal?: Principal): Promise<{ model: ModelRow; job: PipelineView }> {
    if (!input.namespace) throw badInput('model.namespace is required', 'namespace');
    const model = await this.repo.model(input.namespace, input.name ?? undefined, input.version ?? undefined);
    if (!model) throw dataError(`no model ${input.namespace}${input.name ? `/${input.name}` : ''}${input.version ? ` version ${input.version}` : ''}`);
    const job = await this.submit({ dsl: model.dsl, runtimeConf: model.runtime_conf }, principal, { namespace: model.namespace, name: model.name, version: model.version });
    return { model, job };
  }

  async modelVersions(namespace: string, name?: string | null): Promise<ModelRow[]> {
    if (!namespace) throw badInput('namespace is required', 'namespace');
    return this.repo.models(namespace, name ?? undefined);
  }
}
