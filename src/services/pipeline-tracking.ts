/**
 * Pipeline tracking: pipeline jobs and their tasks as FATE-Flow's queries
 * see them (every /v1/job/query filter), logs, component definitions,
 * metrics, outputs and state, and the DAG dependency view. Read-only; see
 * pipeline.service.ts for submit and stop, pipeline-model-registry.ts for
 * versioned definitions.
 */
import type { JobRepo, JobRow, TaskRow } from '../store/job.repo.ts';
import type { PipelineRepo } from '../store/pipeline.repo.ts';
import { TaskState } from '../domain/task-model.ts';
import { badInput, notFound } from '../errors.ts';
import { JobStatus, JobType } from '../domain/job-model.ts';
import { dagDependency, planDag } from '../domain/pipeline-dsl.ts';
import { transformSyntax } from '../replication/transform/parameter-syntax.ts';
import { PipelineKind, confString, pipelineOf, type DagDependency, type PipelineSpecData, type PlannedComponent } from '../domain/pipeline-model.ts';
import type { FateVocabulary } from './legacy-vocabulary.ts';
import { dataError } from './pipeline-errors.ts';

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

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

const ms = (d: Date | null | undefined) => (d ? d.getTime() : null);

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

export class PipelineTracking {
  constructor(
    readonly jobs: JobRepo,
    readonly repo: PipelineRepo,
    /** FATE-Flow's words: statuses and status filters (rest-compat/fate-flow/fate-flow.dialect.ts). */
    private readonly fate: FateVocabulary,
  ) {}

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
}
