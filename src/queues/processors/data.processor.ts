/**
 * Data load (upload_0, TaskKind.DataLoad) and export (download_0,
 * TaskKind.DataExport). The file was validated when the upload was
 * submitted (data.service.ts); the load is one destination transaction, so
 * a failure or a stop leaves the table as it was. The table is created
 * hash-partitioned on its key into `partition` parts (table-io.ts). An export writes a
 * temporary file and renames it into place.
 */
import { rm } from 'node:fs/promises';
import { UnrecoverableError } from 'bullmq';
import type { Row } from '../../replication/change-event.ts';
import { csvBatches, writeCsv } from '../../replication/tables/csv-io.ts';
import { describeTable, loadTable, readTable } from '../../replication/tables/table-io.ts';
import { SAMPLE_ROWS } from '../../domain/pipeline-model.ts';
import type { DataTaskParams, JobTaskPayload } from '../task-payloads.ts';
import type { TaskProcessor } from '../worker-host.ts';
import { TaskRun } from './task-run.ts';
import { ComponentError, ComponentRun, settleSkippedAttempt, type PipelineDeps } from './pipeline-run.ts';

async function runLoad(cr: ComponentRun, p: DataTaskParams): Promise<void> {
  const conn = await cr.deps.connections.config(p.connectionId);
  const columns = p.columns ?? [];
  const info = { schema: p.schema, table: p.table, columns, key: p.key ?? [], estimatedRows: p.rows ?? 0 };
  const sample: Row[] = [];
  const self = cr;
  async function* rows() {
    for await (const batch of csvBatches(p.file!, columns, { delimiter: p.delimiter, head: p.head })) {
      for (const r of batch) if (sample.length < SAMPLE_ROWS) sample.push(r);
      self.rowsIn += batch.length;
      yield batch;
    }
  }
  const n = await loadTable(conn, info, rows(), {
    replace: p.drop, signal: cr.signal, partitions: p.partitions ?? 1,
    onProgress: async (done) => {
      cr.rowsOut = done;
      await cr.progress({ total: p.rows ?? 0 });
      await cr.deps.jobs.mergeProgress(cr.jobId, { rowsDone: done, rowsEstimated: p.rows ?? 0 });
    },
  });
  cr.rowsOut = n;
  await cr.progress({ total: p.rows ?? 0 }, true);
  await cr.deps.pipelines.saveDataTable({
    namespace: p.namespace, table_name: p.tableName, connection_id: p.connectionId, db_schema: p.schema, db_table: p.table,
    partitions: p.partitions ?? 1, delimiter: p.delimiter, head: p.head ?? true, columns, key_columns: p.key ?? [], row_count: n, job_id: cr.jobId,
  });
  await cr.deps.pipelines.putOutput(cr.jobId, cr.component.name, 'data', { columns, key: p.key ?? [], total: n, sample });
  await cr.run.log('info', `uploaded ${n} rows from ${p.file} into ${p.namespace}.${p.tableName}`);
}

async function runExport(cr: ComponentRun, p: DataTaskParams): Promise<void> {
  const conn = await cr.deps.connections.config(p.connectionId);
  const info = await describeTable(conn, { schema: p.schema, table: p.table }, cr.run.logger);
  if (!info) throw new ComponentError(`table ${p.namespace}.${p.tableName} does not exist`);
  const sample: Row[] = [];
  const self = cr;
  async function* rows() {
    for await (const batch of readTable(conn, info!, 5000, self.run.logger, self.signal)) {
      if (self.signal.aborted) throw new ComponentError('export canceled');
      for (const r of batch) if (sample.length < SAMPLE_ROWS) sample.push(r);
      self.rowsIn += batch.length;
      yield batch;
    }
  }
  const n = await writeCsv(p.outputPath!, info.columns.map((c) => c.name), rows(), {
    delimiter: p.delimiter,
    onProgress: async (done) => { cr.rowsOut = done; await cr.progress({ total: info.estimatedRows }); },
  });
  cr.rowsOut = n;
  await cr.deps.pipelines.putOutput(cr.jobId, cr.component.name, 'data', { columns: info.columns, key: info.key, total: n, sample });
  await cr.run.log('info', `downloaded ${n} rows of ${p.namespace}.${p.tableName} to ${p.outputPath}`);
}

export function dataProcessor(deps: PipelineDeps): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const run = await TaskRun.begin(p, ctx, deps);
    if (!run) {
      await settleSkippedAttempt(p, deps).catch(() => undefined);
      return { skipped: 'job not running in this run' };
    }
    const cr = await ComponentRun.begin(p, run, deps);
    const params = cr.component.parameters as unknown as DataTaskParams;
    let settled = false;
    try {
      await cr.checkTimeout();
      if (p.kind === 'data-load') await runLoad(cr, params); else await runExport(cr, params);
      if (cr.signal.aborted) return await cr.stopped();
      const out = await cr.complete();
      settled = true;
      return out;
    } catch (err) {
      if (cr.signal.aborted) { settled = true; return await cr.stopped(); }
      return await cr.fail(err).catch((e: unknown) => { settled = e instanceof UnrecoverableError; throw e; });
    } finally {
      run.finish();
      // A gateway-staged (multipart) file is removed once the load is over for good.
      if (params.staged && params.file && settled) await rm(params.file, { force: true }).catch(() => undefined);
    }
  };
}
