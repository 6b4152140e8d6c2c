/**
 * FATE-Flow REST API v1 as a route table (see docs/compat.md, "FATE-Flow
 * v1"). Every route is POST with a JSON body (form and query string are read
 * too), runs one GraphQL operation and answers FATE's envelope.
 */
import type { GraphQLErrorShape } from '../executor.ts';
import { defineRoute, type JsonSchema, type RestRequest, type RestResponse, type RestRoute } from '../rest-route.ts';
import {
  PIPELINE_FIELDS, RetCode, TASK_FIELDS, envelope, fateError, fateJob, fateTask, fields, filterOf, graphqlErrorResponse, modelInfo,
  objectField, ok, pipelineFateStatus, required, rowValues, type GqlPipeline, type GqlTask,
} from './fate-flow.mapping.ts';
import {
  allMetricsData, dataViewData, dependencyData, envelopeSchema, jobConfigData, jobListData, jobLogData, jobStartedData, metricData, metricNamesData,
  modelLoadData, modelOnlineData, modelVersionsData, outputData, outputModelData, parametersData, stopData, submitData, tableInfoData, taskListData,
} from './fate-flow.schemas.ts';
import { fateTaskStatus } from './fate-flow.dialect.ts';

const TABLE_FIELDS = 'namespace tableName exist count partitions header columns key address';

export const FateOperation = {
  Jobs: `query FateJobs($f: PipelineFilterInput) { pipelines(filter: $f) { ${PIPELINE_FIELDS} } }`,
  JobLogs: `query FateJobLog($f: PipelineFilterInput) { pipelines(filter: $f) { jobId logs(last: 10000) { at level message } } }`,
  Tasks: `query FateTasks($f: PipelineFilterInput) { pipelineTasks(filter: $f) { ${TASK_FIELDS} } }`,
  Submit: `mutation FateSubmit($input: SubmitPipelineInput!) { submitPipeline(input: $input) { ${PIPELINE_FIELDS} } }`,
  Stop: `mutation FateStop($jobId: String!, $stopStatus: String) { stopPipeline(jobId: $jobId, stopStatus: $stopStatus) { jobId status statusReason } }`,
  Upload: `mutation FateUpload($input: UploadDataInput!) { uploadData(input: $input) { ${PIPELINE_FIELDS} } }`,
  Download: `mutation FateDownload($input: DownloadDataInput!) { downloadData(input: $input) { ${PIPELINE_FIELDS} } }`,
  DataView: `query FateDataView($jobId: ID!) { pipeline(jobId: $jobId) { ${PIPELINE_FIELDS}
    components { name module status upstream parameters progress metrics { namespace name data meta } output { name header total } } } }`,
  Metrics: 'query FateMetrics($jobId: String!, $c: String!) { componentMetrics(jobId: $jobId, component: $c) { namespace name data meta } }',
  State: 'query FateComponentState($jobId: String!, $c: String!) { componentState(jobId: $jobId, component: $c) }',
  Outputs: 'query FateOutputs($jobId: String!, $c: String!) { componentOutputs(jobId: $jobId, component: $c) { name header total sample } }',
  Dependency: 'query FateDependency($jobId: String, $dsl: JSON, $conf: JSON) { pipelineDependency(jobId: $jobId, dsl: $dsl, runtimeConf: $conf) }',
  LoadModel: 'mutation FateModelLoad($input: LoadModelInput!) { loadModel(input: $input) { id namespace name version sourceJob createdAt dsl } }',
  OnlineModel: `mutation FateModelOnline($input: OnlineModelInput!) { onlineModel(input: $input) { model { namespace name version } job { ${PIPELINE_FIELDS} } } }`,
  ModelVersions: 'query FateModelVersions($ns: String!, $name: String) { modelVersions(namespace: $ns, name: $name) { id namespace name version description sourceJob createdAt dsl runtimeConf } }',
  TableInfo: `query FateTableInfo($ns: String!, $t: String!) { dataTable(namespace: $ns, tableName: $t) { ${TABLE_FIELDS} } }`,
  CreateTable: `mutation FateCreateTable($input: CreateDataTableInput!) { createDataTable(input: $input) { ${TABLE_FIELDS} } }`,
} as const;

type Metric = { namespace: string; name: string; data: [unknown, unknown][]; meta: Record<string, unknown> };

const JOB_EXAMPLE = { job_id: '2024050612304512300001' };
const TRACKING_EXAMPLE = { job_id: '2024050612304512300001', role: 'local', party_id: 0, component_name: 'reader_0' };
export const DSL_EXAMPLE = {
  components: {
    reader_0: { module: 'Reader', output: { data: ['data'] } },
    filter_0: { module: 'Filter', input: { data: { data: ['reader_0.data'] } }, output: { data: ['data'] } },
    writer_0: { module: 'Writer', input: { data: { data: ['filter_0.data'] } } },
  },
};
export const CONF_EXAMPLE = {
  initiator: { role: 'local', party_id: 0 },
  role: { local: [0] },
  component_parameters: {
    common: {
      reader_0: { table: { namespace: 'maria-src', name: 'orders' } },
      filter_0: { where: "amount > 100 and status = 'paid'" },
      writer_0: { table: { namespace: 'pg-dest.analytics', name: 'big_orders' }, mode: 'replace' },
    },
  },
};

/** A POST route answering the FATE envelope; every FATE route reads JSON, form or query alike. */
function fateRoute<TData = any>(r: Omit<RestRoute<TData>, 'method' | 'input' | 'tags' | 'responses'> & { tag: string; example?: unknown; data: JsonSchema }): RestRoute {
  const { tag, example, data, ...rest } = r;
  return defineRoute<TData>({
    method: 'POST', input: 'any', tags: [tag],
    responses: [{ status: 200, description: 'FATE envelope: retcode 0 success, 100 exception, 101 argument error, 102 data error, 103 operating error', example: example ?? { retcode: 0, retmsg: 'success' }, schema: envelopeSchema(data) }],
    error: (errors: GraphQLErrorShape[]) => graphqlErrorResponse(errors),
    ...rest,
  });
}

const trackingVars = (req: RestRequest) => {
  required(req, 'job_id', 'component_name');
  const f = fields(req);
  return { jobId: String(f.job_id), c: String(f.component_name) };
};

function allMetrics(list: Metric[]): Record<string, Record<string, { data: unknown; meta: unknown }>> {
  const out: Record<string, Record<string, { data: unknown; meta: unknown }>> = {};
  for (const m of list) (out[m.namespace] ??= {})[m.name] = { data: m.data, meta: m.meta };
  return out;
}

function dataRoute(kind: 'upload' | 'download'): RestRoute {
  return fateRoute<{ uploadData?: GqlPipeline; downloadData?: GqlPipeline }>({
    path: `/v1/data/${kind}`, tag: 'DataAccess', data: jobStartedData,
    summary: kind === 'upload' ? 'Load a CSV (server path, or multipart field "file") into namespace.table_name' : 'Export namespace.table_name to a CSV at output_path',
    requestExample: kind === 'upload'
      ? { file: '/data/orders.csv', head: 1, partition: 4, namespace: 'maria-src', table_name: 'orders', delimiter: ',', local: { role: 'local', party_id: 0 } }
      : { output_path: '/tmp/orders.csv', namespace: 'maria-src', table_name: 'orders', delimitor: ',', local: { role: 'local', party_id: 0 } },
    example: { retcode: 0, retmsg: 'success', jobId: '2024050612304512300001', data: { job_id: '2024050612304512300001', namespace: 'maria-src', table_name: 'orders' } },
    operation: kind === 'upload' ? FateOperation.Upload : FateOperation.Download,
    variables: (req) => {
      const f = fields(req);
      const num = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : Number(v));
      if (kind === 'download') {
        required(req, 'output_path');
        return { input: { namespace: String(f.namespace ?? ''), tableName: String(f.table_name ?? f.name ?? ''), outputPath: String(f.output_path), delimiter: f.delimitor ?? f.delimiter, request: req.input } };
      }
      required(req, 'file');
      const staged = stagedUploads.get(String(f.__staged_upload ?? ''))?.path;
      const request = Object.fromEntries(Object.entries(req.input).filter(([k]) => k !== '__staged_upload'));
      return {
        input: {
          file: staged ?? String(f.file), namespace: String(f.namespace ?? ''), tableName: String(f.table_name ?? f.name ?? ''),
          head: num(f.head), delimiter: f.delimiter ?? f.delimitor, partition: num(f.partition), drop: num(f.drop), staged: !!staged, request,
        },
      };
    },
    result: (d, req) => {
      const p = (d.uploadData ?? d.downloadData)!;
      const staged = stagedUploads.get(String(fields(req).__staged_upload ?? ''));
      if (staged) staged.adopted = true;
      return ok({ job_id: p.jobId, namespace: (p.runtimeConf as Record<string, unknown>)?.namespace, table_name: (p.runtimeConf as Record<string, unknown>)?.table_name, model_info: modelInfo(p), board_url: '', logs_directory: '' }, { jobId: p.jobId });
    },
  });
}

/** Multipart uploads: token -> staged file path, registered by the multipart middleware (index.ts); a token no middleware issued names nothing. */
export const stagedUploads = new Map<string, { path: string; adopted: boolean }>();

export const fateFlowRoutes: RestRoute[] = [
  dataRoute('upload'),
  dataRoute('download'),

  fateRoute<{ submitPipeline: GqlPipeline }>({
    path: '/v1/job/submit', tag: 'Job', data: submitData, summary: 'Submit a DAG job (job_dsl + job_runtime_conf)',
    requestExample: { job_dsl: DSL_EXAMPLE, job_runtime_conf: CONF_EXAMPLE },
    example: { retcode: 0, retmsg: 'success', jobId: '2024050612304512300001', data: { job_id: '2024050612304512300001', model_info: { model_id: 'local-0#model', model_version: '2024050612304512300001' } } },
    operation: FateOperation.Submit,
    variables: (req) => {
      const f = fields(req);
      const dsl = objectField(req, 'job_dsl') ?? f.job_dsl;
      const conf = objectField(req, 'job_runtime_conf') ?? f.job_runtime_conf;
      if (dsl === undefined || dsl === null) throw fateError(RetCode.ArgumentError, 'required parameters are missing: job_dsl');
      if (conf === undefined || conf === null) throw fateError(RetCode.ArgumentError, 'required parameters are missing: job_runtime_conf');
      return { input: { dsl, runtimeConf: conf } };
    },
    result: (d) => ok({ job_id: d.submitPipeline.jobId, model_info: modelInfo(d.submitPipeline), board_url: '', logs_directory: '' }, { jobId: d.submitPipeline.jobId }),
  }),

  fateRoute<{ stopPipeline: { jobId: string; status: string; statusReason: string | null } }>({
    path: '/v1/job/stop', tag: 'Job', data: stopData, summary: 'Stop a job: its tasks stop, the status becomes canceled', requestExample: JOB_EXAMPLE,
    operation: FateOperation.Stop,
    variables: (req) => { required(req, 'job_id'); const f = fields(req); return { jobId: String(f.job_id), stopStatus: f.stop_status ?? null }; },
    result: (d) => { const status = pipelineFateStatus(d.stopPipeline); return ok({ job_id: d.stopPipeline.jobId, status }, { retmsg: `stop job on this party ${status}; stop job on all party success`, jobId: d.stopPipeline.jobId }); },
  }),

  fateRoute<{ pipelines: GqlPipeline[] }>({
    path: '/v1/job/query', tag: 'Job', data: jobListData, summary: 'Jobs matching every given filter (a list)', requestExample: { job_id: '2024050612304512300001', status: 'success' },
    operation: FateOperation.Jobs, variables: (req) => ({ f: filterOf(req) }),
    result: (d) => (d.pipelines.length ? ok(d.pipelines.map(fateJob)) : ok([], { retmsg: 'no job could be found' })),
  }),

  fateRoute<{ pipelines: GqlPipeline[] }>({
    path: '/v1/job/config', tag: 'Job', data: jobConfigData, summary: 'DSL, runtime conf and model info of the first matching job', requestExample: JOB_EXAMPLE,
    operation: FateOperation.Jobs, variables: (req) => ({ f: filterOf(req) }),
    result: (d) => {
      const p = d.pipelines[0];
      if (!p) return envelope(RetCode.ArgumentError, 'find job failed');
      return ok({ job_id: p.jobId, dsl: p.dsl, runtime_conf: p.runtimeConf, train_runtime_conf: {}, model_info: modelInfo(p) });
    },
  }),

  fateRoute<{ pipelines: { jobId: string; logs: { at: string; level: string; message: string }[] }[] }>({
    path: '/v1/job/log', tag: 'Job', data: jobLogData, summary: 'The job\'s log lines', requestExample: JOB_EXAMPLE,
    operation: FateOperation.JobLogs,
    variables: (req) => { required(req, 'job_id'); return { f: { jobId: String(fields(req).job_id) } }; },
    result: (d) => {
      const p = d.pipelines[0];
      if (!p) return envelope(RetCode.DataError, 'can not found job');
      return ok({ job_id: p.jobId, logs: p.logs, lines: p.logs.map((l) => `[${l.level.toUpperCase()}] [${l.at}] ${l.message}`) }, { jobId: p.jobId });
    },
  }),

  fateRoute<{ pipelineTasks: GqlTask[] }>({
    path: '/v1/job/task/query', tag: 'Job', data: taskListData, summary: 'Tasks (components) of the matching jobs (a list)', requestExample: { job_id: '2024050612304512300001', component_name: 'reader_0' },
    operation: FateOperation.Tasks, variables: (req) => ({ f: filterOf(req) }),
    result: (d) => (d.pipelineTasks.length ? ok(d.pipelineTasks.map((t) => fateTask(t))) : envelope(RetCode.ArgumentError, 'find task failed')),
  }),

  fateRoute<{ pipeline: (GqlPipeline & { components: { name: string; module: string; status: string; upstream: string[]; parameters: Record<string, unknown>; metrics: Metric[]; output: { name: string; header: string[]; total: number }[] }[] }) | null }>({
    path: '/v1/tracking/job/data_view', tag: 'Tracking', data: dataViewData, summary: 'Job view: tables read and written, rows per component, metric summary', requestExample: { job_id: '2024050612304512300001', role: 'local', party_id: 0 },
    operation: FateOperation.DataView,
    variables: (req) => { required(req, 'job_id'); return { jobId: String(fields(req).job_id) }; },
    result: (d) => {
      const p = d.pipeline;
      if (!p) return envelope(RetCode.ArgumentError, 'error');
      const tables = (m: string) => p.components.filter((c) => c.module === m).map((c) => ({ component: c.name, ...(c.parameters.table as object ?? { namespace: c.parameters.namespace, name: c.parameters.table_name ?? c.parameters.tableName }) }));
      const summary: Record<string, Record<string, Record<string, unknown>>> = {};
      for (const c of p.components) for (const m of c.metrics) ((summary[m.namespace] ??= {})[m.name] ??= {})[c.name] = m.data[0]?.[1] ?? null;
      return ok({
        job_id: p.jobId, status: pipelineFateStatus(p), progress: p.progress, roles: p.roles, partner: {},
        dataset: { input: tables('Reader'), output: tables('Writer') },
        components: p.components.map((c) => ({ component_name: c.name, module: c.module, status: fateTaskStatus(c.status), upstream: c.upstream, outputs: c.output.map((o) => ({ name: o.name, header: o.header, total: o.total })) })),
        model_summary: summary,
      });
    },
  }),

  fateRoute<{ componentMetrics: Metric[] }>({
    path: '/v1/tracking/component/metric/all', tag: 'Tracking', data: allMetricsData, summary: 'Every metric of a component: rows in/out, duration, errors, lag', requestExample: TRACKING_EXAMPLE,
    operation: FateOperation.Metrics, variables: trackingVars,
    result: (d) => (d.componentMetrics.length ? ok(allMetrics(d.componentMetrics)) : ok({}, { retmsg: 'no data' })),
  }),

  fateRoute<{ componentMetrics: Metric[] }>({
    path: '/v1/tracking/component/metrics', tag: 'Tracking', data: metricNamesData, summary: 'Metric names of a component by metric namespace', requestExample: TRACKING_EXAMPLE,
    operation: FateOperation.Metrics, variables: trackingVars,
    result: (d) => {
      const out: Record<string, string[]> = {};
      for (const m of d.componentMetrics) (out[m.namespace] ??= []).push(m.name);
      return d.componentMetrics.length ? ok(out) : ok({}, { retmsg: 'no data' });
    },
  }),

  fateRoute<{ componentMetrics: Metric[] }>({
    path: '/v1/tracking/component/metric_data', tag: 'Tracking', data: metricData, summary: 'One metric: data [[key, value]] and meta', requestExample: { ...TRACKING_EXAMPLE, metric_namespace: 'stats', metric_name: 'rows_out' },
    operation: FateOperation.Metrics,
    variables: (req) => {
      const f = fields(req);
      if (f.metric_name === undefined && f.meric_name !== undefined) (req.input as Record<string, unknown>).metric_name = f.meric_name;
      required(req, 'metric_namespace', 'metric_name');
      return trackingVars(req);
    },
    result: (d, req) => {
      const f = fields(req);
      const m = d.componentMetrics.find((x) => x.namespace === String(f.metric_namespace) && x.name === String(f.metric_name));
      return m ? ok(m.data, { meta: m.meta }) : ok([], { retmsg: 'no data', meta: {} });
    },
  }),

  fateRoute<{ componentState: { definition: { module: string; parameters: Record<string, unknown> } } }>({
    path: '/v1/tracking/component/parameters', tag: 'Tracking', data: parametersData, summary: 'Parameters of a component: {module, <Module>Param}', requestExample: TRACKING_EXAMPLE,
    operation: FateOperation.State, variables: trackingVars,
    result: (d) => ok({ module: d.componentState.definition.module, [`${d.componentState.definition.module}Param`]: d.componentState.definition.parameters }),
  }),

  fateRoute<{ componentState: { definition: Record<string, unknown> & { module: string; name: string }; state: Record<string, unknown> | null } }>({
    path: '/v1/tracking/component/output/model', tag: 'Tracking', data: outputModelData, summary: 'The component\'s definition and state; meta names the module', requestExample: TRACKING_EXAMPLE,
    operation: FateOperation.State, variables: trackingVars,
    result: (d) => {
      const { definition, state } = d.componentState;
      return ok({ definition, state }, { meta: { module_name: definition.module, component_name: definition.name, meta_data: { inputs: definition.inputs, outputs: definition.outputs } } });
    },
  }),

  fateRoute<{ componentOutputs: { name: string; header: string[]; total: number; sample: Record<string, unknown>[] }[] }>({
    path: '/v1/tracking/component/output/data', tag: 'Tracking', data: outputData, summary: 'Sample output rows (first 100) with the header', requestExample: TRACKING_EXAMPLE,
    operation: FateOperation.Outputs, variables: trackingVars,
    result: (d) => {
      const outs = d.componentOutputs;
      if (!outs.length || outs.every((o) => !o.sample.length)) return ok([], { retmsg: 'no data' });
      return ok(outs.map((o) => o.sample.map((r) => rowValues(o.header, r))), { meta: { header: outs.map((o) => o.header), total: outs.map((o) => o.total), names: outs.map((o) => o.name) } });
    },
  }),

  fateRoute<{ pipelineDependency: unknown }>({
    path: '/v1/pipeline/dag/dependency', tag: 'Pipeline', data: dependencyData, summary: 'DAG dependency of a job (or of job_dsl when no job_id)', requestExample: JOB_EXAMPLE,
    operation: FateOperation.Dependency,
    variables: (req) => {
      const f = fields(req);
      const dsl = objectField(req, 'job_dsl');
      if (!f.job_id && !dsl) required(req, 'job_id');
      return { jobId: f.job_id ? String(f.job_id) : null, dsl: f.job_id ? null : dsl, conf: f.job_id ? null : objectField(req, 'job_runtime_conf') ?? {} };
    },
    result: (d) => ok(d.pipelineDependency),
  }),

  fateRoute<{ loadModel: { namespace: string; name: string; version: string; sourceJob: string | null; createdAt: string; dsl: { components?: Record<string, unknown> } } }>({
    path: '/v1/model/load', tag: 'Model', data: modelLoadData, summary: 'Validate and store a version of a pipeline definition',
    requestExample: { initiator: { role: 'local', party_id: 0 }, role: { local: [0] }, model: { namespace: 'orders-etl', name: 'big-orders', job_dsl: DSL_EXAMPLE, job_runtime_conf: CONF_EXAMPLE } },
    operation: FateOperation.LoadModel,
    variables: (req) => {
      const f = fields(req);
      const model = objectField(req, 'model');
      const jp = objectField(req, 'job_parameters');
      const ns = model?.namespace ?? model?.model_id ?? jp?.model_id;
      if (!model && !jp) throw fateError(RetCode.ArgumentError, 'required parameters are missing: model');
      if (!ns) throw fateError(RetCode.ArgumentError, 'required parameters are missing: model.namespace');
      return {
        input: {
          namespace: String(ns), name: str(model?.name ?? model?.table_name), version: str(model?.version ?? model?.model_version ?? jp?.model_version),
          dsl: model?.dsl ?? model?.job_dsl ?? null, runtimeConf: model?.runtime_conf ?? model?.job_runtime_conf ?? null,
          jobId: str(model?.job_id ?? f.job_id), description: str(model?.description),
        },
      };
    },
    result: (d) => ok({ namespace: d.loadModel.namespace, name: d.loadModel.name, version: d.loadModel.version, status: 'loaded', components: Object.keys(d.loadModel.dsl?.components ?? {}), create_time: d.loadModel.createdAt }, { jobId: d.loadModel.sourceJob }),
  }),

  fateRoute<{ onlineModel: { model: { namespace: string; name: string; version: string }; job: GqlPipeline } }>({
    path: '/v1/model/online', tag: 'Model', data: modelOnlineData, summary: 'Deploy a stored version as a running job',
    requestExample: { servings: [], role: { local: [0] }, local: { role: 'local', party_id: 0 }, model: { namespace: 'orders-etl', name: 'big-orders' } },
    operation: FateOperation.OnlineModel,
    variables: (req) => {
      const model = objectField(req, 'model');
      const ns = model?.namespace ?? model?.model_id;
      if (!ns) throw fateError(RetCode.ArgumentError, 'required parameters are missing: model.namespace');
      return { input: { namespace: String(ns), name: str(model?.name), version: str(model?.version ?? model?.model_version) } };
    },
    result: (d) => ok({ job_id: d.onlineModel.job.jobId, ...d.onlineModel.model, status: pipelineFateStatus(d.onlineModel.job) }, { jobId: d.onlineModel.job.jobId }),
  }),

  fateRoute<{ modelVersions: { namespace: string; name: string; version: string; description: string | null; sourceJob: string | null; createdAt: string; dsl: unknown; runtimeConf: unknown }[] }>({
    path: '/v1/model/version', tag: 'Model', data: modelVersionsData, summary: 'Version history of a namespace, newest first', requestExample: { namespace: 'orders-etl' },
    operation: FateOperation.ModelVersions,
    variables: (req) => { required(req, 'namespace'); const f = fields(req); return { ns: String(f.namespace), name: str(f.name) ?? null }; },
    result: (d) => ok(d.modelVersions.map((m) => ({ namespace: m.namespace, name: m.name, version: m.version, description: m.description, job_id: m.sourceJob, create_time: Date.parse(m.createdAt), create_date: m.createdAt, dsl: m.dsl, runtime_conf: m.runtimeConf })), { retmsg: d.modelVersions.length ? 'success' : 'no data' }),
  }),

  fateRoute<{ dataTable?: DataTableAnswer; createDataTable?: DataTableAnswer }>({
    path: '/v1/table/table_info', tag: 'Table', data: tableInfoData,
    summary: 'exist, count, schema and partitions of namespace.table_name; with create: true the table is created (empty, partitioned on its key) unless it exists',
    requestExample: { create: true, namespace: 'maria-src', table_name: 'scores', partition: 4, schema: { sid: 'id', header: 'x0,x1' }, local: { role: 'local', party_id: 0 }, role: { local: [0] }, data_type: 'csv', gen_table_info: true },
    operation: (req) => (isCreate(req) ? FateOperation.CreateTable : FateOperation.TableInfo),
    variables: (req) => {
      const f = fields(req);
      if (!f.table_name && f.name) (req.input as Record<string, unknown>).table_name = f.name;
      if (!isCreate(req)) {
        required(req, 'namespace', 'table_name');
        return { ns: String(f.namespace), t: String(fields(req).table_name) };
      }
      required(req, 'namespace');
      const schema = objectField(req, 'schema');
      const header = schema?.header;
      const num = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : Number(v));
      return {
        input: {
          namespace: String(f.namespace), tableName: str(fields(req).table_name), partitions: num(f.partition ?? f.partitions),
          sid: str(schema?.sid),
          header: header === undefined || header === null ? undefined : Array.isArray(header) ? header.map(String) : String(header).split(',').map((h) => h.trim()).filter(Boolean),
        },
      };
    },
    result: (d) => {
      const t = (d.dataTable ?? d.createDataTable)!;
      const sid = t.key[0] ?? '';
      return ok({
        table_name: t.tableName, namespace: t.namespace, exist: t.exist ? 1 : 0, count: t.count, partition: t.partitions,
        schema: t.exist ? { header: t.header.filter((h) => h !== sid).join(','), sid, columns: t.columns } : null, address: t.address,
      });
    },
  }),
];

type DataTableAnswer = { namespace: string; tableName: string; exist: boolean; count: number; partitions: number | null; header: string[]; columns: unknown; key: string[]; address: unknown };

/** table_info's `create`: a boolean, or what forms and query strings make of one. */
function isCreate(req: RestRequest): boolean {
  const v = fields(req).create;
  return v === true || v === 1 || (typeof v === 'string' && ['true', '1'].includes(v.trim().toLowerCase()));
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : String(v);
}

export type { RestResponse };
