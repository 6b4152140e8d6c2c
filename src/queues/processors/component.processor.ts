/**
 * One pipeline component per task (TaskKind.Component). Reader reads a
 * table in key order; Filter, Map and Aggregate transform the rows their
 * input staged; Writer loads them into a table in one destination
 * transaction (so a failed or stopped Writer leaves nothing half-written).
 * Rows travel between components through the metadata database
 * (component_staged_rows, bounded per output; see pipeline-run.ts).
 * A Capture streams instead, with the components below it fused into its
 * task, until the job is stopped (capture-stream.ts).
 */
import type { TableInfo } from '../../replication/table-info.ts';
import { RateLimiter } from '../../replication/pipeline/rate-limiter.ts';
import { describeTable, loadTable, readTable } from '../../replication/tables/table-io.ts';
import {
  aggregateTransform, filterTransform, mapTransform, type AggregateParams, type MapParams, type RowSchema, type RowTransform,
} from '../../replication/transform/row-transforms.ts';
import { SAMPLE_ROWS, PipelineModule } from '../../domain/pipeline-model.ts';
import { tableParam } from '../../domain/pipeline-dsl.ts';
import type { Row } from '../../replication/change-event.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import type { TaskProcessor } from '../worker-host.ts';
import { TaskRun } from './task-run.ts';
import { ComponentError, ComponentRun, settleSkippedAttempt, type PipelineDeps } from './pipeline-run.ts';
import { runCaptureStream } from './capture-stream.ts';

const READ_BATCH = 2000;

async function resolveTable(cr: ComponentRun) {
  const t = tableParam(cr.component.parameters, cr.component.name);
  const ns = await cr.deps.pipelines.resolveNamespace(t.namespace);
  if (!ns) throw new ComponentError(`namespace "${t.namespace}" is neither a connection nor a database of one`);
  const conn = await cr.deps.connections.config(ns.connection.id);
  return { conn, at: { schema: ns.schema, table: t.name }, label: `${t.namespace}.${t.name}` };
}

async function inputSchema(cr: ComponentRun): Promise<{ schema: RowSchema; up: string; output: string }> {
  const input = cr.component.inputs[0]!;
  const outs = await cr.deps.pipelines.outputs(cr.jobId, input.component);
  const o = outs[0];
  if (!o) throw new ComponentError(`input ${input.component}.${input.output} has no output (did it run?)`);
  return { schema: { columns: o.columns, key: o.key_columns }, up: input.component, output: o.output_name };
}

async function runReader(cr: ComponentRun): Promise<void> {
  const { conn, at, label } = await resolveTable(cr);
  const info = await describeTable(conn, at, cr.run.logger);
  if (!info) throw new ComponentError(`table ${label} does not exist`);
  const rps = Number(cr.component.parameters.rows_per_second ?? 0);
  const limiter = new RateLimiter(rps);
  const batchRows = rps > 0 ? Math.max(1, Math.min(READ_BATCH, Math.ceil(rps / 4))) : READ_BATCH;
  const sink = cr.stage();
  for await (const batch of readTable(conn, info, batchRows, cr.run.logger, cr.signal)) {
    await limiter.take(batch.length, cr.signal);
    if (cr.signal.aborted) return;
    await sink.push(batch);
    cr.rowsIn += batch.length;
    cr.rowsOut += batch.length;
    await cr.progress({ total: info.estimatedRows });
  }
  if (cr.signal.aborted) return;
  await sink.finish({ columns: info.columns, key: info.key });
}

function transformFor(cr: ComponentRun, schema: RowSchema): RowTransform {
  const p = cr.component.parameters;
  switch (cr.component.module) {
    case PipelineModule.Filter: return filterTransform(schema, { where: String(p.where ?? p.condition ?? p.expression) });
    case PipelineModule.Map: return mapTransform(schema, p as MapParams);
    case PipelineModule.Aggregate: return aggregateTransform(schema, p as unknown as AggregateParams);
    default: throw new ComponentError(`module ${cr.component.module} is not a transform`);
  }
}

async function runTransform(cr: ComponentRun): Promise<void> {
  const { schema, up, output } = await inputSchema(cr);
  const t = transformFor(cr, schema);
  const sink = cr.stage();
  for await (const batch of cr.deps.pipelines.stagedBatches(cr.jobId, up, output)) {
    if (cr.signal.aborted) return;
    cr.rowsIn += batch.length;
    const out = t.push(batch);
    cr.rowsOut += out.length;
    await sink.push(out);
    await cr.progress();
  }
  const end = t.finish();
  if (end.rows.length) { cr.rowsOut += end.rows.length; await sink.push(end.rows); }
  await sink.finish(end.schema);
}

async function runWriter(cr: ComponentRun): Promise<void> {
  const { schema, up, output } = await inputSchema(cr);
  const { conn, at, label } = await resolveTable(cr);
  const p = cr.component.parameters;
  const key = Array.isArray(p.key) ? p.key.map(String) : schema.key;
  for (const k of key) if (!schema.columns.some((c) => c.name === k)) throw new ComponentError(`key column "${k}" is not among the input columns (${schema.columns.map((c) => c.name).join(', ')})`);
  const info: TableInfo = { schema: at.schema, table: at.table, columns: schema.columns, key, estimatedRows: 0 };
  const sample: Row[] = [];
  const self = cr;
  async function* rows() {
    for await (const batch of self.deps.pipelines.stagedBatches(self.jobId, up, output)) {
      for (const r of batch) if (sample.length < SAMPLE_ROWS) sample.push(r);
      self.rowsIn += batch.length;
      yield batch;
    }
  }
  const n = await loadTable(conn, info, rows(), {
    replace: p.mode === 'replace', signal: cr.signal,
    onProgress: async (done) => { cr.rowsOut = done; await cr.progress(); },
  });
  cr.rowsOut = n;
  await cr.deps.pipelines.putOutput(cr.jobId, cr.component.name, cr.component.outputs[0] ?? 'data', { columns: schema.columns, key, total: n, sample });
  await cr.run.log('info', `${cr.component.name} wrote ${n} rows to ${label}`);
}

export function componentProcessor(deps: PipelineDeps): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const run = await TaskRun.begin(p, ctx, deps);
    if (!run) {
      await settleSkippedAttempt(p, deps).catch(() => undefined);
      return { skipped: 'job not running in this run' };
    }
    const cr = await ComponentRun.begin(p, run, deps);
    try {
      await cr.checkTimeout();
      await deps.pipelines.clearStage(cr.jobId, cr.component.name);
      switch (cr.component.module) {
        case PipelineModule.Reader: await runReader(cr); break;
        // Streams until stopped, running the Filter/Map/Writer components below it (capture-stream.ts).
        case PipelineModule.Capture: await runCaptureStream(cr); break;
        case PipelineModule.Writer: await runWriter(cr); break;
        case PipelineModule.Filter:
        case PipelineModule.Map:
        case PipelineModule.Aggregate: await runTransform(cr); break;
        default: throw new ComponentError(`module ${cr.component.module} cannot run in a pipeline`);
      }
      if (cr.signal.aborted) return await cr.stopped();
      return await cr.complete();
    } catch (err) {
      if (cr.signal.aborted) return await cr.stopped();
      return await cr.fail(err);
    } finally {
      run.finish();
    }
  };
}
