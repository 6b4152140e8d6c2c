/**
 * The data API: upload a CSV into `namespace.table_name`, download a table
 * to CSV, and table info. Uploads and downloads are pipeline jobs of one
 * component each (upload_0 / download_0, as FATE ran them), executed by the
 * data-load / data-export processors with progress on the task.
 *
 * Everything that can be checked before the job starts is checked here and
 * answered at once: the namespace, the file (exists; every record as wide
 * as the header, the error naming the line; a present and unique key in
 * the first column), an existing table without `drop`, the output
 * directory. The load itself is one transaction (table-io.ts loadTable).
 *
 * `partition` (upload) and `partitions` (table_info create) are applied: the
 * table is created hash-partitioned on its key into that many partitions by
 * the database (table-io.ts), and table_info reads the count from the
 * database's catalog. table_info `create` creates the table (FATE allotted a
 * new table there; a name is generated when none is given).
 */
import { randomUUID } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import type { Principal } from '../auth/roles.ts';
import { AppError, ErrorCode, badInput } from '../errors.ts';
import type { ConnectionRepo } from '../store/connection.repo.ts';
import type { PipelineRepo, ResolvedNamespace } from '../store/pipeline.repo.ts';
import { TaskKind } from '../domain/task-model.ts';
import type { DataTaskParams } from '../queues/task-payloads.ts';
import { CsvDataError, fileExists, scanCsv } from '../replication/tables/csv-io.ts';
import { MAX_PARTITIONS, countRows, describeTable, loadTable, tablePartitions } from '../replication/tables/table-io.ts';
import type { ColumnType } from '../replication/change-event.ts';
import { PipelineKind, PipelineModule, type PlannedComponent } from '../domain/pipeline-model.ts';
import type { PipelineService } from './pipeline.service.ts';
import type { PipelineView } from './pipeline-tracking.ts';
import { dataError } from './pipeline-errors.ts';

export interface UploadInput {
  file: string;
  namespace: string;
  tableName: string;
  /** 1: the first line is the header. Default 1. */
  head?: number | null;
  delimiter?: string | null;
  partition?: number | null;
  /** 1: replace an existing table. Default 0 (an existing table is an error, as in FATE). */
  drop?: number | null;
  /** The file was staged by the gateway (multipart) and is removed after the load. */
  staged?: boolean | null;
  /** The request as sent (role, local, work_mode, ...), kept as the job's runtime conf. */
  request?: unknown;
}

export interface DownloadInput {
  namespace: string;
  tableName: string;
  outputPath: string;
  delimiter?: string | null;
  request?: unknown;
}

/** table_info `create`: FATE's table schema shape (`sid` the key, `header` the other columns), all text. */
export interface CreateTableInput {
  namespace: string;
  /** Absent: a new name, as FATE generated one (32 hex digits). */
  tableName?: string | null;
  partitions?: number | null;
  /** Key column. Default `id`. */
  sid?: string | null;
  /** Other columns. Default `["value"]` (FATE's key/value table). */
  header?: string[] | null;
}

/** Table names Tributary creates ("namespace.table_name"); FATE's generated names start with a digit. */
const TABLE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_$]{0,62}$/;
const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

function partitionsOf(v: number | null | undefined, field: string): number {
  const n = v ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS) throw badInput(`${field} must be an integer between 1 and ${MAX_PARTITIONS}`, field);
  return n;
}

export interface TableInfoView {
  namespace: string;
  tableName: string;
  exist: boolean;
  count: number;
  partitions: number | null;
  columns: ColumnType[];
  key: string[];
  header: string[];
  address: { connection: string; kind: string; schema: string; table: string } | null;
}

function delimiterOf(d: string | null | undefined): string {
  if (d === undefined || d === null || d === '') return ',';
  const v = d === '\\t' ? '\t' : d;
  if (v.length !== 1 || v === '"' || v === '\n' || v === '\r') throw badInput('delimiter must be one character other than a quote or a line break', 'delimiter');
  return v;
}

export class DataService {
  constructor(private readonly pipelines: PipelineService, private readonly repo: PipelineRepo, private readonly connections: ConnectionRepo) {}

  private async namespace(ns: string): Promise<ResolvedNamespace> {
    const r = await this.repo.resolveNamespace(ns);
    if (!r) throw dataError(`namespace "${ns}" is neither a connection nor a database of one`, { field: 'namespace' });
    return r;
  }

  /** Where `namespace.table_name` lives: the registry first, else the namespace's connection and schema. */
  private async locate(namespace: string, tableName: string): Promise<{ connectionId: string; schema: string; table: string; partitions: number | null }> {
    const reg = await this.repo.dataTable(namespace, tableName);
    if (reg) return { connectionId: reg.connection_id, schema: reg.db_schema, table: reg.db_table, partitions: reg.partitions };
    const r = await this.namespace(namespace);
    return { connectionId: r.connection.id, schema: r.schema, table: tableName, partitions: null };
  }

  async upload(input: UploadInput, principal?: Principal): Promise<PipelineView> {
    if (!input.namespace) throw badInput('namespace is required', 'namespace');
    if (!input.tableName) throw badInput('table_name is required', 'table_name');
    if (!input.file) throw badInput('file is required', 'file');
    if (!TABLE_NAME.test(input.tableName)) throw badInput('table_name must be a table name ([A-Za-z0-9_][A-Za-z0-9_$]{0,62})', 'table_name');
    const head = (input.head ?? 1) !== 0;
    const partitions = partitionsOf(input.partition, 'partition');
    const delimiter = delimiterOf(input.delimiter);
    const file = isAbsolute(input.file) ? input.file : resolve(input.file);
    if (!(await fileExists(file))) throw dataError(`file ${input.file} does not exist or is not a file`, { field: 'file' });
    const where = await this.locate(input.namespace, input.tableName);
    const conn = await this.connections.config(where.connectionId);
    const existing = await describeTable(conn, { schema: where.schema, table: where.table });
    if (existing && input.drop !== 1) {
      throw new AppError(ErrorCode.Conflict, `the data table ${input.namespace}.${input.tableName} already exists; upload again with drop=1 to replace it`, { category: 'exception' });
    }
    let scan;
    try {
      scan = await scanCsv(file, { delimiter, head });
    } catch (err) {
      if (err instanceof CsvDataError) throw dataError(`${input.file}: ${err.message}; nothing was loaded`, { field: 'file', ...(err.line ? { line: err.line } : {}) });
      throw err;
    }
    const params: DataTaskParams = {
      namespace: input.namespace, tableName: input.tableName, connectionId: where.connectionId, schema: where.schema, table: where.table,
      delimiter, file, head, partitions, drop: input.drop === 1, staged: !!input.staged, columns: scan.columns, key: scan.key, rows: scan.rows,
    };
    const component: PlannedComponent = { name: 'upload_0', module: PipelineModule.Upload, inputs: [], upstream: [], downstream: [], outputs: ['data'], parameters: params as unknown as Record<string, unknown> };
    const spec = this.pipelines.specFor(PipelineKind.Upload, { components: { upload_0: { module: PipelineModule.Upload } } }, input.request ?? {}, [component]);
    return this.pipelines.launch(spec, TaskKind.DataLoad, principal);
  }

  async download(input: DownloadInput, principal?: Principal): Promise<PipelineView> {
    if (!input.outputPath) throw badInput('output_path is required', 'output_path');
    if (!input.namespace) throw badInput('namespace is required', 'namespace');
    if (!input.tableName) throw badInput('table_name is required', 'table_name');
    const delimiter = delimiterOf(input.delimiter);
    const outputPath = isAbsolute(input.outputPath) ? input.outputPath : resolve(input.outputPath);
    const dir = await stat(dirname(outputPath)).catch(() => undefined);
    if (!dir?.isDirectory()) throw dataError(`output directory ${dirname(input.outputPath)} does not exist`, { field: 'output_path' });
    const where = await this.locate(input.namespace, input.tableName);
    const info = await describeTable(await this.connections.config(where.connectionId), { schema: where.schema, table: where.table });
    if (!info) throw dataError(`table ${input.namespace}.${input.tableName} does not exist`, { field: 'table_name' });
    const params: DataTaskParams = { namespace: input.namespace, tableName: input.tableName, connectionId: where.connectionId, schema: where.schema, table: where.table, delimiter, outputPath, rows: info.estimatedRows };
    const component: PlannedComponent = { name: 'download_0', module: PipelineModule.Download, inputs: [], upstream: [], downstream: [], outputs: [], parameters: params as unknown as Record<string, unknown> };
    const spec = this.pipelines.specFor(PipelineKind.Download, { components: { download_0: { module: PipelineModule.Download } } }, input.request ?? {}, [component]);
    return this.pipelines.launch(spec, TaskKind.DataExport, principal);
  }

  /**
   * table_info `create`: the table, empty, partitioned on its key, unless one is there already (then it is
   * left as it is); answered like table_info.
   */
  async createTable(input: CreateTableInput): Promise<TableInfoView> {
    if (!input.namespace) throw badInput('namespace is required', 'namespace');
    const tableName = input.tableName || randomUUID().replace(/-/g, '');
    if (!TABLE_NAME.test(tableName)) throw badInput('table_name must be a table name ([A-Za-z0-9_][A-Za-z0-9_$]{0,62})', 'table_name');
    const partitions = partitionsOf(input.partitions, 'partition');
    const sid = input.sid || 'id';
    const header = input.header ?? ['value'];
    for (const c of [sid, ...header]) if (!COLUMN_NAME.test(c)) throw badInput(`column "${c}" must be a column name ([A-Za-z_][A-Za-z0-9_$]{0,62})`, 'schema');
    if (new Set([sid, ...header]).size !== header.length + 1) throw badInput('schema: sid and header name each column once', 'schema');
    const where = await this.locate(input.namespace, tableName);
    const conn = await this.connections.config(where.connectionId);
    const at = { schema: where.schema, table: where.table };
    if (!(await describeTable(conn, at))) {
      const columns: ColumnType[] = [sid, ...header].map((name) => ({ name, kind: 'text', sourceType: 'text' }));
      try {
        await loadTable(conn, { ...at, columns, key: [sid], estimatedRows: 0 }, [], { partitions });
      } catch (err) {
        throw new AppError(ErrorCode.Unavailable, `cannot create ${input.namespace}.${tableName}: ${(err as Error).message}`, { category: 'exception' });
      }
    }
    return this.tableInfo(input.namespace, tableName);
  }

  async tableInfo(namespace: string, tableName: string): Promise<TableInfoView> {
    if (!namespace) throw badInput('namespace is required', 'namespace');
    if (!tableName) throw badInput('table_name is required', 'table_name');
    const empty: TableInfoView = { namespace, tableName, exist: false, count: 0, partitions: null, columns: [], key: [], header: [], address: null };
    const reg = await this.repo.dataTable(namespace, tableName);
    let where: { connectionId: string; schema: string; table: string; partitions: number | null };
    if (reg) where = { connectionId: reg.connection_id, schema: reg.db_schema, table: reg.db_table, partitions: reg.partitions };
    else {
      const r = await this.repo.resolveNamespace(namespace);
      if (!r) return empty;
      where = { connectionId: r.connection.id, schema: r.schema, table: tableName, partitions: null };
    }
    const conn = await this.connections.config(where.connectionId);
    const at = { schema: where.schema, table: where.table };
    const info = await describeTable(conn, at);
    if (!info) return empty;
    const row = await this.connections.get(where.connectionId);
    return {
      namespace, tableName, exist: true,
      count: await countRows(conn, at),
      partitions: await tablePartitions(conn, at),
      columns: info.columns, key: info.key, header: info.columns.map((c) => c.name),
      address: { connection: row?.name ?? where.connectionId, kind: conn.kind, schema: where.schema, table: where.table },
    };
  }
}
