/**
 * Pipelines: submit a DAG (validated by domain/pipeline-dsl.ts), launch a
 * planned pipeline (also data load/export, data.service.ts), and stop it.
 * Queries and tracking are pipeline-tracking.ts, versioned definitions
 * pipeline-model-registry.ts. See domain/pipeline-model.ts for the state
 * machine; components run in src/queues/processors/component.processor.ts.
 */
import type { JobRepo, JobRow } from '../store/job.repo.ts';
import type { PipelineRepo } from '../store/pipeline.repo.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import { QueueName, SHARED_POOL } from '../queues/queue-names.ts';
import { TaskKind, TaskState, UNSTARTED_TASK_STATES } from '../domain/task-model.ts';
import { enqueueReady } from '../queues/pipeline-scheduler.ts';
import { Topic, topicFor, type AppPubSub } from '../events/pubsub.ts';
import { AppError, ErrorCode, badInput } from '../errors.ts';
import type { Principal } from '../auth/roles.ts';
import { DEFAULT_SPEC, JobStatus, JobType, type JobSpec } from '../domain/job-model.ts';
import { jobStatusEvent } from '../domain/job-views.ts';
import { JOB_CONTROL_TOPIC, type JobControlMessage } from './job.service.ts';
import { planDag, tableParam } from '../domain/pipeline-dsl.ts';
import { transformSyntax } from '../replication/transform/parameter-syntax.ts';
import type { DbConnectionConfig } from '../replication/connection-config.ts';
import { silentLogger } from '../replication/logger.ts';
import { dropStreamCapture, prepareStreamCapture, type StreamCaptureDetail } from '../replication/pipeline/stream-capture.ts';
import { DEFAULT_STAGE_MAX_ROWS, MAX_STAGE_ROWS, PipelineKind, PipelineModule, confString, type PipelineSpecData, type PlannedComponent } from '../domain/pipeline-model.ts';
import { UniqueViolationError } from '../store/store-errors.ts';
import type { FateVocabulary } from './legacy-vocabulary.ts';
import { dataError } from './pipeline-errors.ts';
import type { PipelineTracking, PipelineView } from './pipeline-tracking.ts';

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

export interface SubmitInput { dsl: unknown; runtimeConf: unknown }

export class PipelineService {
  constructor(
    readonly jobs: JobRepo,
    readonly repo: PipelineRepo,
    private readonly queues: QueueSet,
    private readonly pubSub: AppPubSub,
    /** FATE-Flow's words: job ids and statuses (rest-compat/fate-flow/fate-flow.dialect.ts). */
    private readonly fate: FateVocabulary,
    private readonly tracking: PipelineTracking,
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
    return this.tracking.view(moved);
  }

  async stop(jobId: string, stopStatus: 'canceled' | 'failed' = 'canceled'): Promise<PipelineView> {
    const row = await this.tracking.get(jobId);
    const to = stopStatus === 'failed' ? JobStatus.Failed : JobStatus.Canceled;
    const moved = await this.jobs.transition(row.id, [JobStatus.Running, JobStatus.Pending, JobStatus.Paused], to, { bumpRun: true, finished: true, reason: 'stopped by request' });
    if (!moved) {
      if (row.status === to) return this.tracking.view(row);
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
    return this.tracking.view(moved);
  }
}
