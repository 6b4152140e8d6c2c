/** Pipelines, their components, data tables and model versions: thin calls into PipelineService and DataService. */
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../auth/roles.ts';
import type { GraphQLContext } from './context.ts';
import { JSONScalar } from './scalars.ts';
import { JobLog, type JobStatusEnum } from './job.types.ts';
import {
  ComponentMetric, ComponentOutput, CreateDataTableInput, DataTable, DownloadDataInput, LoadModelInput, ModelVersion, OnlineModelInput, OnlineModelResult,
  Pipeline, PipelineComponent, PipelineFilterInput, SubmitPipelineInput, UploadDataInput,
} from './pipeline.types.ts';
import type { PipelineView, TaskView } from '../services/pipeline-tracking.ts';
import type { ModelRow, MetricRow, OutputRow } from '../store/pipeline.repo.ts';
import { pipelineOf } from '../domain/pipeline-model.ts';

type PipelineNode = Pipeline & { row: PipelineView['row'] };

function toPipeline(v: PipelineView): PipelineNode {
  const { status, ...rest } = v;
  return { ...rest, status: status as unknown as JobStatusEnum } as PipelineNode;
}

function toComponent(job: PipelineView, t: TaskView): PipelineComponent {
  const def = pipelineOf(job.row).components.find((c) => c.name === t.componentName);
  return {
    ...t, name: t.componentName, jobUuid: job.id,
    upstream: def?.upstream ?? [], downstream: def?.downstream ?? [], outputs: def?.outputs ?? [], parameters: def?.parameters ?? {},
  };
}

export const toMetric = (m: MetricRow): ComponentMetric => ({ namespace: m.metric_namespace, name: m.metric_name, data: m.data, meta: m.meta });
export const toOutput = (o: OutputRow): ComponentOutput => ({
  name: o.output_name, header: o.columns.map((c) => c.name), columns: o.columns, key: o.key_columns, total: Number(o.total), sample: o.sample,
});
export const toModel = (m: ModelRow): ModelVersion => ({
  id: m.id, namespace: m.namespace, name: m.name, version: m.version, dsl: m.dsl, runtimeConf: m.runtime_conf,
  description: m.description, sourceJob: m.source_job, createdAt: m.created_at.toISOString(),
});

@Resolver(() => Pipeline)
export class PipelineResolver {
  @Authorized(Role.Reader)
  @Query(() => [Pipeline], { description: 'Pipeline jobs matching every given filter (FATE-Flow /v1/job/query).', complexity: 10 })
  async pipelines(@Arg('filter', () => PipelineFilterInput, { nullable: true }) filter: PipelineFilterInput | undefined, @Ctx() ctx: GraphQLContext): Promise<Pipeline[]> {
    return (await ctx.services.pipelineTracking.query(filter ?? {})).map(toPipeline);
  }

  @Authorized(Role.Reader)
  @Query(() => Pipeline, { nullable: true, description: 'By FATE job id or uuid.' })
  async pipeline(@Arg('jobId', () => ID) jobId: string, @Ctx() ctx: GraphQLContext): Promise<Pipeline | null> {
    const v = await ctx.services.pipelineTracking.find(jobId);
    return v ? toPipeline(v) : null;
  }

  @Authorized(Role.Reader)
  @Query(() => [PipelineComponent], { description: 'Tasks (components) of the jobs matching the filter (FATE-Flow /v1/job/task/query).', complexity: 10 })
  async pipelineTasks(@Arg('filter', () => PipelineFilterInput, { nullable: true }) filter: PipelineFilterInput | undefined, @Ctx() ctx: GraphQLContext): Promise<PipelineComponent[]> {
    const tasks = await ctx.services.pipelineTracking.tasks(filter ?? {});
    const jobs = new Map<string, PipelineView>();
    const out: PipelineComponent[] = [];
    for (const t of tasks) {
      let j = jobs.get(t.jobId);
      if (!j) { j = await ctx.services.pipelineTracking.view(await ctx.services.pipelineTracking.get(t.jobId)); jobs.set(t.jobId, j); }
      out.push(toComponent(j, t));
    }
    return out;
  }

  @Authorized(Role.Reader)
  @Query(() => JSONScalar, { description: 'FATE dag dependency (component_list, dependencies, component_module, component_need_run) of a job or of a DSL.' })
  async pipelineDependency(
    @Arg('jobId', () => String, { nullable: true }) jobId: string | undefined,
    @Arg('dsl', () => JSONScalar, { nullable: true }) dsl: unknown,
    @Arg('runtimeConf', () => JSONScalar, { nullable: true }) runtimeConf: unknown,
    @Ctx() ctx: GraphQLContext,
  ): Promise<unknown> {
    return ctx.services.pipelineTracking.dependency(jobId, dsl, runtimeConf);
  }

  @Authorized(Role.Reader)
  @Query(() => [ComponentMetric])
  async componentMetrics(@Arg('jobId', () => String) jobId: string, @Arg('component', () => String) component: string, @Ctx() ctx: GraphQLContext): Promise<ComponentMetric[]> {
    return (await ctx.services.pipelineTracking.metrics(jobId, component)).map(toMetric);
  }

  @Authorized(Role.Reader)
  @Query(() => [ComponentOutput])
  async componentOutputs(@Arg('jobId', () => String) jobId: string, @Arg('component', () => String) component: string, @Ctx() ctx: GraphQLContext): Promise<ComponentOutput[]> {
    return (await ctx.services.pipelineTracking.outputs(jobId, component)).map(toOutput);
  }

  @Authorized(Role.Reader)
  @Query(() => JSONScalar, { description: 'A component\'s definition (module, inputs, outputs, parameters) and state (task).' })
  async componentState(@Arg('jobId', () => String) jobId: string, @Arg('component', () => String) component: string, @Ctx() ctx: GraphQLContext): Promise<unknown> {
    const s = await ctx.services.pipelineTracking.componentState(jobId, component);
    return { definition: s.definition, state: s.task ?? null };
  }

  @Authorized(Role.Reader)
  @Query(() => DataTable, { description: 'exist, count, schema and partitions of namespace.table_name.' })
  async dataTable(@Arg('namespace', () => String) namespace: string, @Arg('tableName', () => String) tableName: string, @Ctx() ctx: GraphQLContext): Promise<DataTable> {
    return ctx.services.data.tableInfo(namespace, tableName);
  }

  @Authorized(Role.Reader)
  @Query(() => [ModelVersion], { description: 'Stored versions under a namespace, newest first.' })
  async modelVersions(@Arg('namespace', () => String) namespace: string, @Arg('name', () => String, { nullable: true }) name: string | undefined, @Ctx() ctx: GraphQLContext): Promise<ModelVersion[]> {
    return (await ctx.services.pipelineModels.modelVersions(namespace, name)).map(toModel);
  }

  @FieldResolver(() => [PipelineComponent], { complexity: 5 })
  async components(@Root() p: PipelineNode, @Ctx() ctx: GraphQLContext): Promise<PipelineComponent[]> {
    const view = await ctx.services.pipelineTracking.view(p.row);
    return (await ctx.services.pipelineTracking.tasks({ jobId: p.id })).map((t) => toComponent(view, t));
  }

  @FieldResolver(() => [JobLog], { complexity: 5 })
  async logs(@Root() p: PipelineNode, @Ctx() ctx: GraphQLContext, @Arg('last', () => Int, { defaultValue: 1000 }) last: number): Promise<JobLog[]> {
    const rows = await ctx.services.pipelineTracking.logs(p.id, Math.min(Math.max(last, 0), 10_000));
    return rows.map((r) => ({ at: r.at.toISOString(), level: r.level, message: r.message }));
  }

  @FieldResolver(() => JSONScalar)
  async dependency(@Root() p: PipelineNode, @Ctx() ctx: GraphQLContext): Promise<unknown> {
    return ctx.services.pipelineTracking.dependency(p.id);
  }

  @Authorized(Role.Operator)
  @Mutation(() => Pipeline, { description: 'Validate a DSL and runtime conf and run the DAG.' })
  async submitPipeline(@Arg('input', () => SubmitPipelineInput) input: SubmitPipelineInput, @Ctx() ctx: GraphQLContext): Promise<Pipeline> {
    return toPipeline(await ctx.services.pipelines.submit(input, ctx.principal));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Pipeline, { description: 'Stop: unfinished tasks stop, the status becomes canceled (or failed).' })
  async stopPipeline(@Arg('jobId', () => String) jobId: string, @Arg('stopStatus', () => String, { nullable: true }) stopStatus: string | undefined, @Ctx() ctx: GraphQLContext): Promise<Pipeline> {
    return toPipeline(await ctx.services.pipelines.stop(jobId, stopStatus === 'failed' ? 'failed' : 'canceled'));
  }

  @Authorized(Role.Operator)
  @Mutation(() => Pipeline, { description: 'Load a CSV into namespace.table_name (a job with one component, upload_0).' })
  async uploadData(@Arg('input', () => UploadDataInput) input: UploadDataInput, @Ctx() ctx: GraphQLContext): Promise<Pipeline> {
    return toPipeline(await ctx.services.data.upload(input, ctx.principal));
  }

  @Authorized(Role.Operator)
  @Mutation(() => DataTable, { description: 'Create namespace.table_name empty (partitioned on its key) unless it exists; answered like dataTable.' })
  async createDataTable(@Arg('input', () => CreateDataTableInput) input: CreateDataTableInput, @Ctx() ctx: GraphQLContext): Promise<DataTable> {
    return ctx.services.data.createTable(input);
  }

  @Authorized(Role.Operator)
  @Mutation(() => Pipeline, { description: 'Export a table to a CSV file (a job with one component, download_0).' })
  async downloadData(@Arg('input', () => DownloadDataInput) input: DownloadDataInput, @Ctx() ctx: GraphQLContext): Promise<Pipeline> {
    return toPipeline(await ctx.services.data.download(input, ctx.principal));
  }

  @Authorized(Role.Operator)
  @Mutation(() => ModelVersion, { description: 'Validate and store a version of a pipeline definition.' })
  async loadModel(@Arg('input', () => LoadModelInput) input: LoadModelInput, @Ctx() ctx: GraphQLContext): Promise<ModelVersion> {
    return toModel(await ctx.services.pipelineModels.loadModel(input));
  }

  @Authorized(Role.Operator)
  @Mutation(() => OnlineModelResult, { description: 'Deploy a stored version as a running pipeline job.' })
  async onlineModel(@Arg('input', () => OnlineModelInput) input: OnlineModelInput, @Ctx() ctx: GraphQLContext): Promise<OnlineModelResult> {
    const r = await ctx.services.pipelineModels.onlineModel(input, ctx.principal);
    return { model: toModel(r.model), job: toPipeline(r.job) };
  }
}

@Resolver(() => PipelineComponent)
export class PipelineComponentResolver {
  @FieldResolver(() => [ComponentMetric])
  async metrics(@Root() c: PipelineComponent, @Ctx() ctx: GraphQLContext): Promise<ComponentMetric[]> {
    return (await ctx.services.pipelineTracking.metricsOf(c.jobUuid, c.name)).map(toMetric);
  }

  @FieldResolver(() => [ComponentOutput])
  async output(@Root() c: PipelineComponent, @Ctx() ctx: GraphQLContext): Promise<ComponentOutput[]> {
    return (await ctx.services.pipelineTracking.outputsOf(c.jobUuid, c.name)).map(toOutput);
  }
}
