/** Cached queries in the metadata database: definition, status, and the result with the feed position it covers. */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

export type CachedQueryMode = 'incremental' | 'rerun';

export interface CachedQueryRow {
  id: string;
  connection_id: string;
  job_id: string | null;
  environment_id: string | null;
  sql: string;
  mode: CachedQueryMode;
  mode_reason: string | null;
  plan: Record<string, unknown>;
  status: string;
  error: string | null;
  columns: string[];
  rows: Record<string, unknown>[] | null;
  row_keys: string[] | null;
  version: string;
  refreshed_at: Date | null;
  last_sequence: string | null;
  state: unknown;
  created_at: Date;
  updated_at: Date;
}

export interface NewCachedQuery {
  connectionId: string;
  jobId: string | null;
  environmentId: string | null;
  sql: string;
  mode: CachedQueryMode;
  modeReason?: string | null;
  plan: Record<string, unknown>;
}

const LIGHT = 'id, connection_id, job_id, environment_id, sql, mode, mode_reason, plan, status, error, columns, version, refreshed_at, last_sequence, created_at, updated_at';

export class CachedQueryRepo {
  constructor(private readonly pool: pg.Pool) {}

  async create(q: NewCachedQuery): Promise<CachedQueryRow> {
    const { rows } = await this.pool.query<CachedQueryRow>(
      `INSERT INTO cached_queries (id, connection_id, job_id, environment_id, sql, mode, mode_reason, plan)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING *`,
      [randomUUID(), q.connectionId, q.jobId, q.environmentId, q.sql, q.mode, q.modeReason ?? null, JSON.stringify(q.plan)],
    );
    return rows[0]!;
  }

  /** With rows and state. */
  async get(id: string): Promise<CachedQueryRow | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const { rows } = await this.pool.query<CachedQueryRow>('SELECT * FROM cached_queries WHERE id = $1', [id]);
    return rows[0];
  }

  /** Without rows and state. */
  async list(f: { connectionId?: string; environmentId?: string } = {}): Promise<CachedQueryRow[]> {
    const { rows } = await this.pool.query<CachedQueryRow>(
      `SELECT ${LIGHT} FROM cached_queries WHERE ($1::uuid IS NULL OR connection_id = $1) AND ($2::text IS NULL OR environment_id = $2) ORDER BY created_at, id`,
      [f.connectionId ?? null, f.environmentId ?? null],
    );
    return rows;
  }

  async exists(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM cached_queries WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  }

  async setStatus(id: string, status: string, error: string | null = null): Promise<void> {
    await this.pool.query('UPDATE cached_queries SET status = $2, error = $3, updated_at = now() WHERE id = $1', [id, status, error]);
  }

  /** The result and the position it covers, in one write. `refreshed` false keeps version and refreshed_at (a position-only checkpoint). */
  async saveResult(id: string, r: { columns: string[]; rows: unknown[]; keys: string[]; version: number; lastSequence: string | null; state: unknown; refreshed: boolean }): Promise<Date | undefined> {
    const { rows } = await this.pool.query<{ refreshed_at: Date }>(
      `UPDATE cached_queries SET columns = $2, rows = $3, row_keys = $4, version = $5, last_sequence = $6, state = $7,
              refreshed_at = CASE WHEN $8 THEN now() ELSE refreshed_at END, status = 'active', error = NULL, updated_at = now()
        WHERE id = $1 RETURNING refreshed_at`,
      [id, JSON.stringify(r.columns), JSON.stringify(r.rows), JSON.stringify(r.keys), r.version, r.lastSequence, JSON.stringify(r.state), r.refreshed],
    );
    return rows[0]?.refreshed_at;
  }

  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM cached_queries WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  }

  async deleteForConnection(connectionId: string): Promise<number> {
    const { rowCount } = await this.pool.query('DELETE FROM cached_queries WHERE connection_id = $1', [connectionId]);
    return rowCount ?? 0;
  }
}
