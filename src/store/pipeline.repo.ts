/**
 * Pipeline metadata: versioned definitions ("models"), the data table
 * registry, component metrics and outputs, and the staging area that
 * carries rows from one component to the next (see 004_pipelines.sql).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ColumnType, Row } from '../replication/change-event.ts';
import type { ConnectionRepo, ConnectionRow } from './connection.repo.ts';
import { translateStoreError } from './store-errors.ts';

export interface ModelRow {
  id: string;
  namespace: string;
  name: string;
  version: string;
  dsl: unknown;
  runtime_conf: unknown;
  description: string | null;
  source_job: string | null;
  created_at: Date;
}

export interface DataTableRow {
  namespace: string;
  table_name: string;
  connection_id: string;
  db_schema: string;
  db_table: string;
  partitions: number;
  delimiter: string;
  head: boolean;
  columns: ColumnType[];
  key_columns: string[];
  row_count: string;
  job_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface MetricRow { component: string; metric_namespace: string; metric_name: string; data: [string | number, unknown][]; meta: Record<string, unknown>; updated_at: Date }
export interface OutputRow { component: string; output_name: string; columns: ColumnType[]; key_columns: string[]; total: string; sample: Row[]; updated_at: Date }

/** A namespace resolved to a connection and a schema (MariaDB database or PostgreSQL schema). */
export interface ResolvedNamespace { connection: ConnectionRow; schema: string }

export class PipelineRepo {
  constructor(readonly pool: pg.Pool, private readonly connections: ConnectionRepo) {}

  /**
   * `namespace` is a connection name (schema: the connection's database on
   * MariaDB, `public` on PostgreSQL), `<connection>.<schema>`, or a database
   * name that exactly one connection is configured with.
   */
  /** A connection's full config (password decrypted), for the Capture's preparation at submit. */
  connectionConfig(id: string) { return this.connections.config(id); }

  async resolveNamespace(namespace: string): Promise<ResolvedNamespace | undefined> {
    const byName = await this.connections.byName(namespace);
    if (byName) return { connection: byName, schema: defaultSchema(byName) };
    const dot = namespace.indexOf('.');
    if (dot > 0) {
      const c = await this.connections.byName(namespace.slice(0, dot));
      if (c) return { connection: c, schema: namespace.slice(dot + 1) };
    }
    const matches = (await this.connections.list()).filter((c) => c.database === namespace);
    return matches.length === 1 ? { connection: matches[0]!, schema: namespace } : undefined;
  }

  // ------------------------------------------------------------ models

  async addModel(m: { namespace: string; name: string; version: string; dsl: unknown; runtimeConf: unknown; description?: string | null; sourceJob?: string | null }): Promise<ModelRow> {
    const { rows } = await this.pool.query<ModelRow>(
      `INSERT INTO pipeline_models (id, namespace, name, version, dsl, runtime_conf, description, source_job)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING *`,
      [randomUUID(), m.namespace, m.name, m.version, JSON.stringify(m.dsl), JSON.stringify(m.runtimeConf ?? {}), m.description ?? null, m.sourceJob ?? null]).catch(translateStoreError);
    return rows[0]!;
  }

  async models(namespace: string, name?: string): Promise<ModelRow[]> {
    const { rows } = await this.pool.query<ModelRow>(
      `SELECT * FROM pipeline_models WHERE namespace = $1 AND ($2::text IS NULL OR name = $2) ORDER BY created_at DESC, version DESC`, [namespace, name ?? null]);
    return rows;
  }

  async model(namespace: string, name?: string, version?: string): Promise<ModelRow | undefined> {
    const { rows } = await this.pool.query<ModelRow>(
      `SELECT * FROM pipeline_models WHERE namespace = $1 AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR version = $3)
       ORDER BY created_at DESC LIMIT 1`, [namespace, name ?? null, version ?? null]);
    return rows[0];
  }

  // ------------------------------------------------------------ data tables

  async dataTable(namespace: string, tableName: string): Promise<DataTableRow | undefined> {
    const { rows } = await this.pool.query<DataTableRow>('SELECT * FROM data_tables WHERE namespace = $1 AND table_name = $2', [namespace, tableName]);
    return rows[0];
  }

  async saveDataTable(t: Omit<DataTableRow, 'created_at' | 'updated_at' | 'row_count'> & { row_count: number }): Promise<void> {
    await this.pool.query(
      `INSERT INTO data_tables (namespace, table_name, connection_id, db_schema, db_table, partitions, delimiter, head, columns, key_columns, row_count, job_id)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
       ON CONFLICT (namespace, table_name) DO UPDATE SET connection_id = EXCLUDED.connection_id, db_schema = EXCLUDED.db_schema,
         db_table = EXCLUDED.db_table, partitions = EXCLUDED.partitions, delimiter = EXCLUDED.delimiter, head = EXCLUDED.head,
         columns = EXCLUDED.columns, key_columns = EXCLUDED.key_columns, row_count = EXCLUDED.row_count, job_id = EXCLUDED.job_id, updated_at = now()`,
      [t.namespace, t.table_name, t.connection_id, t.db_schema, t.db_table, t.partitions, t.delimiter, t.head, JSON.stringify(t.columns), JSON.stringify(t.key_columns), t.row_count, t.job_id]);
  }

  async dropDataTable(namespace: string, tableName: string): Promise<void> {
    await this.pool.query('DELETE FROM data_tables WHERE namespace = $1 AND table_name = $2', [namespace, tableName]);
  }

  // ------------------------------------------------------------ metrics and outputs

  async putMetric(jobId: string, component: string, ns: string, name: string, data: [string | number, unknown][], meta: Record<string, unknown>): Promise<void> {
    await this.pool.query(
      `INSERT INTO component_metrics (job_id, component, metric_namespace, metric_name, data, meta) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (job_id, component, metric_namespace, metric_name) DO UPDATE SET data = EXCLUDED.data, meta = EXCLUDED.meta, updated_at = now()`,
      [jobId, component, ns, name, JSON.stringify(data), JSON.stringify(meta)]);
  }

  async metrics(jobId: string, component?: string): Promise<MetricRow[]> {
    const { rows } = await this.pool.query<MetricRow>(
      `SELECT component, metric_namespace, metric_name, data, meta, updated_at FROM component_metrics
       WHERE job_id = $1 AND ($2::text IS NULL OR component = $2) ORDER BY component, metric_namespace, metric_name`, [jobId, component ?? null]);
    return rows;
  }

  async putOutput(jobId: string, component: string, output: string, o: { columns: ColumnType[]; key: string[]; total: number; sample: Row[] }): Promise<void> {
    await this.pool.query(
      `INSERT INTO component_outputs (job_id, component, output_name, columns, key_columns, total, sample) VALUES ($1,$2,$3,$4,$5,$6,$7)
       ON CONFLICT (job_id, component, output_name) DO UPDATE SET columns = EXCLUDED.columns, key_columns = EXCLUDED.key_columns,
         total = EXCLUDED.total, sample = EXCLUDED.sample, updated_at = now()`,
      [jobId, component, output, JSON.stringify(o.columns), JSON.stringify(o.key), o.total, JSON.stringify(o.sample)]);
  }

  async outputs(jobId: string, component?: string): Promise<OutputRow[]> {
    const { rows } = await this.pool.query<OutputRow>(
      `SELECT component, output_name, columns, key_columns, total, sample, updated_at FROM component_outputs
       WHERE job_id = $1 AND ($2::text IS NULL OR component = $2) ORDER BY component, output_name`, [jobId, component ?? null]);
    return rows;
  }

  // ------------------------------------------------------------ staging

  async clearStage(jobId: string, component?: string): Promise<void> {
    await this.pool.query('DELETE FROM component_staged_rows WHERE job_id = $1 AND ($2::text IS NULL OR component = $2)', [jobId, component ?? null]);
  }

  async stageBatch(jobId: string, component: string, output: string, batch: number, rows: Row[]): Promise<void> {
    await this.pool.query(
      `INSERT INTO component_staged_rows (job_id, component, output_name, batch, rows) VALUES ($1,$2,$3,$4,$5)
       ON CONFLICT (job_id, component, output_name, batch) DO UPDATE SET rows = EXCLUDED.rows`,
      [jobId, component, output, batch, JSON.stringify(rows)]);
  }

  /** Staged batches of one output, in order, one at a time. */
  async *stagedBatches(jobId: string, component: string, output: string): AsyncGenerator<Row[]> {
    for (let batch = 0; ; batch++) {
      const { rows } = await this.pool.query<{ rows: Row[] }>(
        'SELECT rows FROM component_staged_rows WHERE job_id = $1 AND component = $2 AND output_name = $3 AND batch = $4', [jobId, component, output, batch]);
      if (!rows[0]) return;
      yield rows[0].rows;
    }
  }
}

export function defaultSchema(c: ConnectionRow): string {
  return c.kind === 'postgres' ? 'public' : (c.database ?? '');
}
