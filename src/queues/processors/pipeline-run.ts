/**
 * What every pipeline component task shares: its component, metrics, the
 * staging of output rows, and the three ways a component ends:
 * complete (then downstream components that are ready get enqueued, and the
 * job completes with its last component), failed (the job fails, unfinished
 * components are canceled) or stopped (job canceled: the task says so).
 */
import { UnrecoverableError } from 'bullmq';
import type { Row } from '../../replication/change-event.ts';
import { ReplicationError, classify } from '../../replication/errors.ts';
import { ExpressionError } from '../../replication/transform/expression.ts';
import { TransformError, type RowSchema } from '../../replication/transform/row-transforms.ts';
import { CsvDataError } from '../../replication/tables/csv-io.ts';
import { maskSecrets } from '../../observability/logger.ts';
import type { PipelineRepo } from '../../store/pipeline.repo.ts';
import { JobStatus } from '../../domain/job-model.ts';
import { PipelineModule, SAMPLE_ROWS, componentsBelow, type PipelineSpecData, type PlannedComponent, pipelineOf } from '../../domain/pipeline-model.ts';
import { enqueueReady } from '../pipeline-scheduler.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import { TaskRun, WorkerShutdownError, type ReplicationDeps } from './task-run.ts';
import { OPEN_TASK_STATES, TaskState, UNSTARTED_TASK_STATES } from '../../domain/task-model.ts';

export interface PipelineDeps extends ReplicationDeps {
  pipelines: PipelineRepo;
}

/** A component cannot run as configured (missing table, unknown column...): fails at once, no retry. */
export class ComponentError extends Error {
  override readonly name = 'ComponentError';
}

export interface ComponentResult { rowsIn: number; rowsOut: number }

export const METRIC_NAMESPACE = 'stats';

export class ComponentRun {
  readonly startedAt = Date.now();
  rowsIn = 0;
  rowsOut = 0;
  private lastProgress = 0;

  constructor(readonly deps: PipelineDeps, readonly run: TaskRun, readonly payload: JobTaskPayload, readonly spec: PipelineSpecData, readonly component: PlannedComponent, readonly kind: JobTaskPayload['kind']) {}

  static async begin(payload: JobTaskPayload, run: TaskRun, deps: PipelineDeps): Promise<ComponentRun> {
    const spec = pipelineOf(run.job);
    const name = String(payload.detail?.component ?? '');
    const component = spec.components.find((c) => c.name === name);
    if (!component) throw new UnrecoverableError(`job ${run.job.name} has no component "${name}"`);
    const cr = new ComponentRun(deps, run, payload, spec, component, payload.kind);
    await deps.jobs.updateTask(payload.taskId, { progress: { startedAt: cr.startedAt, rowsIn: 0, rowsOut: 0 } });
    return cr;
  }

  /** job_parameters.common.timeout: past it the job fails with reason "timeout" (FATE's timeout status). */
  async checkTimeout(): Promise<void> {
    const { spec, run, deps } = this;
    if (!spec.timeoutSeconds || !run.job.started_at || Date.now() - run.job.started_at.getTime() <= spec.timeoutSeconds * 1000) return;
    const failed = await deps.jobs.transition(run.job.id, [JobStatus.Running], JobStatus.Failed, { reason: 'timeout', error: `job timed out after ${spec.timeoutSeconds} s`, finished: true });
    if (failed) { run.job = failed; run.publishJob('status', 'timeout'); run.logJobFailed(`timed out after ${spec.timeoutSeconds} s`); }
    throw new ComponentError(`job timed out after ${spec.timeoutSeconds} s`);
  }

  get jobId(): string { return this.run.job.id; }
  get signal(): AbortSignal { return this.run.signal; }

  /** Task progress, at most every 500 ms. */
  async progress(extra: Record<string, unknown> = {}, force = false): Promise<void> {
    if (!force && Date.now() - this.lastProgress < 500) return;
    this.lastProgress = Date.now();
    await this.deps.jobs.updateTask(this.payload.taskId, { progress: { rowsIn: this.rowsIn, rowsOut: this.rowsOut, ...extra } });
  }

  /** Rows to the staging area (bounded), with the first rows kept as the output sample. */
  stage(output = this.component.outputs[0] ?? 'data'): { push(rows: Row[]): Promise<void>; finish(schema: RowSchema): Promise<void> } {
    let batch = 0;
    let total = 0;
    const sample: Row[] = [];
    let pending: Row[] = [];
    const flush = async () => {
      if (!pending.length) return;
      await this.deps.pipelines.stageBatch(this.jobId, this.component.name, output, batch++, pending);
      pending = [];
    };
    return {
      push: async (rows) => {
        total += rows.length;
        if (total > this.spec.stageMaxRows) {
          throw new ComponentError(`output exceeds ${this.spec.stageMaxRows} rows staged between components (job_parameters.common.stage_max_rows)`);
        }
        for (const r of rows) { if (sample.length < SAMPLE_ROWS) sample.push(r); pending.push(r); }
        if (pending.length >= 2000) await flush();
      },
      finish: async (schema) => {
        await flush();
        await this.deps.pipelines.putOutput(this.jobId, this.component.name, output, { columns: schema.columns, key: schema.key, total, sample });
      },
    };
  }

  async writeMetrics(errors = 0): Promise<void> {
    const endedAt = Date.now();
    const up = this.component.upstream;
    // Lag: how long the component waited after its last input was ready (queue wait).
    const tasks = up.length ? await this.deps.jobs.tasksOf([this.jobId]) : [];
    const inputsReady = Math.max(0, ...tasks.filter((t) => up.includes(t.name)).map((t) => Number((t.progress as { endedAt?: number }).endedAt ?? 0)));
    const readyAt = up.length ? inputsReady : (this.run.job.started_at?.getTime() ?? this.startedAt);
    const put = (name: string, value: number, meta: Record<string, unknown>) =>
      this.deps.pipelines.putMetric(this.jobId, this.component.name, METRIC_NAMESPACE, name, [['total', value]], { name, metric_type: meta.type, unit: meta.unit, component_name: this.component.name });
    await put('rows_in', this.rowsIn, { type: 'COUNTER', unit: 'rows' });
    await put('rows_out', this.rowsOut, { type: 'COUNTER', unit: 'rows' });
    await put('duration_ms', endedAt - this.startedAt, { type: 'DURATION', unit: 'ms' });
    await put('errors', errors, { type: 'COUNTER', unit: 'errors' });
    await put('lag_ms', Math.max(0, this.startedAt - readyAt), { type: 'GAUGE', unit: 'ms' });
  }

  /** Commit completion, enqueue what is ready, complete the job after its last component. */
  async complete(): Promise<ComponentResult> {
    const { deps, payload } = this;
    await this.writeMetrics(Math.max(0, (this.run.ctx.job.attemptsMade ?? 0)));
    await deps.jobs.updateTask(payload.taskId, { status: TaskState.Complete, progress: { rowsIn: this.rowsIn, rowsOut: this.rowsOut, endedAt: Date.now() } });
    await this.run.log('info', `${this.component.name} (${this.component.module}) complete: ${this.rowsIn} rows in, ${this.rowsOut} rows out`);
    const job = await this.run.check();
    if (!job) return { rowsIn: this.rowsIn, rowsOut: this.rowsOut };
    const tasks = await deps.jobs.tasksOf([job.id]);
    const done = tasks.filter((t) => t.status === TaskState.Complete).length;
    await deps.jobs.mergeProgress(job.id, { chunksDone: done, chunksTotal: tasks.length });
    if (done === tasks.length) {
      const finished = await deps.jobs.transition(job.id, [JobStatus.Running], JobStatus.Complete, { finished: true, reason: null });
      await deps.pipelines.clearStage(job.id);
      if (finished) { this.run.job = finished; await this.run.log('info', 'job complete'); this.run.publishJob('status', 'complete'); }
    } else {
      const started = await enqueueReady(deps.queues, deps.jobs, job, this.kind);
      if (started.length) await this.run.log('info', `started ${started.join(', ')}`);
      this.run.publishJob('progress');
    }
    return { rowsIn: this.rowsIn, rowsOut: this.rowsOut };
  }

  /** The job was stopped (or the worker is shutting down: then BullMQ runs the task again elsewhere). */
  async stopped(): Promise<{ stopped: string }> {
    this.run.finish();
    const job = await this.deps.jobs.get(this.payload.jobId);
    if (this.run.stoppedBecause === 'shutdown' && job && job.run_id === this.payload.runId && job.status === JobStatus.Running) {
      await this.deps.jobs.updateTask(this.payload.taskId, { status: TaskState.Queued });
      throw new WorkerShutdownError();
    }
    await this.deps.jobs.updateTask(this.payload.taskId, { status: TaskState.Canceled, progress: { rowsIn: this.rowsIn, rowsOut: this.rowsOut, endedAt: Date.now() } });
    return { stopped: job?.status ?? 'deleted' };
  }

  /** Retriable I/O with attempts left: BullMQ retries. Anything else fails the component and the job. */
  async fail(err: unknown): Promise<never> {
    const { deps, payload, component } = this;
    const dataProblem = err instanceof ComponentError || err instanceof ExpressionError || err instanceof TransformError || err instanceof CsvDataError;
    const e = dataProblem ? undefined : classify(err);
    const message = maskSecrets((err as Error)?.message ?? String(err));
    const attemptsLeft = (this.run.ctx.job.opts.attempts ?? 1) - (this.run.ctx.job.attemptsMade ?? 0) - 1;
    if (e instanceof ReplicationError && e.retriable && attemptsLeft > 0) {
      await deps.jobs.updateTask(payload.taskId, { status: TaskState.Retrying, error: message });
      await this.run.log('warn', `${component.name} interrupted, retrying: ${message}`);
      throw new Error(message);
    }
    await deps.jobs.updateTask(payload.taskId, { status: TaskState.Failed, error: message, progress: { endedAt: Date.now() } });
    await this.writeMetrics(1).catch(() => undefined);
    const failed = await deps.jobs.transition(this.run.job.id, [JobStatus.Running], JobStatus.Failed, { error: `component ${component.name} failed: ${message}`, reason: `${component.name} failed`, finished: true });
    await deps.jobs.moveTasks({ jobId: this.run.job.id }, UNSTARTED_TASK_STATES, TaskState.Canceled);
    await deps.pipelines.clearStage(this.run.job.id);
    await this.run.log('error', `component ${component.name} (${component.module}) failed: ${message}`);
    if (failed) { this.run.job = failed; this.run.publishJob('status', message); this.run.logJobFailed(`component ${component.name} failed: ${message}`); }
    throw new UnrecoverableError(message);
  }
}

/**
 * An attempt that found its job no longer running in its run (TaskRun.begin
 * said so): nothing runs this task now, so if its job has ended and the task
 * still looks open (its worker died mid-run, or it waited for a retry when
 * the job was stopped), it ends canceled; a Capture's fused components with it.
 */
export async function settleSkippedAttempt(payload: JobTaskPayload, deps: PipelineDeps): Promise<void> {
  const job = await deps.jobs.get(payload.jobId);
  if (!job || job.status === JobStatus.Running || job.status === JobStatus.Pending || job.status === JobStatus.Paused) return;
  const spec = pipelineOf(job);
  const name = String(payload.detail?.component ?? '');
  const mine = spec.components.find((c) => c.name === name);
  const names = [name, ...(mine?.module === PipelineModule.Capture ? componentsBelow(spec.components, name) : [])];
  await deps.jobs.moveTasks({ jobId: job.id, names }, OPEN_TASK_STATES, TaskState.Canceled, { progress: { endedAt: Date.now() } });
}
