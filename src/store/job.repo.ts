import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { JobMetricsData, JobProgressData, JobRunState, JobSpec, JobStatus, JobType } from '../domain/job-model.ts';
import type { TaskState } from '../domain/task-model.ts';
import { translateStoreError } from './store-errors.ts';
import type { SecretBox } from './secrets.ts';

export interface JobRow {
  id: string;
  seq: string;
  name: string;
  type: JobType;
  status: JobStatus;
  status_reason: string | null;
  source_connection_id: string | null;
  dest_connection_id: string | null;
  spec: JobSpec;
  owner: string | null;
  feed_name: string | null;
  run_id: number;
  state: JobRunState;
  progress: Partial<JobProgressData>;
  metrics: Partial<JobMetricsData>;
  error: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  create_index: string;
  modify_index: string;
  /** Encrypted hashing salt of column controls; never leaves the store but through `controlSalt`. */
  control_salt_enc?: string | null;
}

export interface TaskRow {
  id: string;
  job_id: string;
  kind: string;
  name: string;
  status: string;
  node_id: string | null;
  node_hint: string | null;
  queue: string | null;
  placement: string | null;
  position: unknown;
  progress: Record<string, unknown>;
  detail: Record<string, unknown>;
  error: string | null;
  attempts: number;
  created_at: Date;
  updated_at: Date;
}

export interface JobFilter {
  status?: JobStatus[];
  type?: JobType[];
  name?: string;
}

export interface NewJob {
  name: string;
  type: JobType;
  status: JobStatus;
  sourceConnectionId?: string | null;
  destConnectionId?: string | null;
  spec: JobSpec;
  owner?: string | null;
  feedName?: string | null;
}

type Db = pg.Pool | pg.PoolClient;

/** Jobs, tasks and job logs in the metadata database. Every change bumps the global modify index. */
export class JobRepo {
  constructor(readonly pool: pg.Pool, private readonly secrets?: SecretBox) {}

  /**
   * The job's hashing salt (column controls), generated on first use: the
   * first caller's random salt is kept (a concurrent one reads it back), so
   * every worker and every restart hashes alike. Never return it from an API.
   */
  async controlSalt(id: string): Promise<string> {
    if (!this.secrets) throw new Error('JobRepo was built without a SecretBox: cannot read the job salt');
    const fresh = this.secrets.encrypt(randomBytes(32).toString('base64url'));
    const { rows } = await this.pool.query<{ s: string }>(
      'UPDATE jobs SET control_salt_enc = coalesce(control_salt_enc, $2) WHERE id = $1 RETURNING control_salt_enc AS s', [id, fresh]);
    if (!rows[0]) throw new Error(`job ${id} not found`);
    return this.secrets.decrypt(rows[0].s);
  }

  async create(j: NewJob, db: Db = this.pool): Promise<JobRow> {
    const { rows } = await db.query<JobRow>(
      `INSERT INTO jobs (id, name, type, status, source_connection_id, dest_connection_id, spec, owner, feed_name)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING *`,
      [randomUUID(), j.name, j.type, j.status, j.sourceConnectionId ?? null, j.destConnectionId ?? null, JSON.stringify(j.spec), j.owner ?? null, j.feedName ?? null],
    ).catch(translateStoreError);
    return rows[0]!;
  }

  /** By uuid, numeric index (Udup ID) or name. */
  async find(ref: string): Promise<JobRow | undefined> {
    const { rows } = await this.pool.query<JobRow>(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref) ? 'SELECT * FROM jobs WHERE id = $1'
        : /^\d{1,18}$/.test(ref) ? 'SELECT * FROM jobs WHERE seq = $1 OR name = $1::text ORDER BY (seq::text = $1::text) DESC LIMIT 1'
          : 'SELECT * FROM jobs WHERE name = $1',
      [ref],
    );
    return rows[0];
  }

  async get(id: string): Promise<JobRow | undefined> {
    const { rows } = await this.pool.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
    return rows[0];
  }

  async byFeed(feed: string): Promise<JobRow | undefined> {
    const { rows } = await this.pool.query<JobRow>('SELECT * FROM jobs WHERE feed_name = $1', [feed]);
    return rows[0];
  }

  async list(f: JobFilter, offset: number, limit: number): Promise<{ rows: JobRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.status?.length) { params.push(f.status); where.push(`status = ANY($${params.length})`); }
    if (f.type?.length) { params.push(f.type); where.push(`type = ANY($${params.length})`); }
    if (f.name) { params.push(`%${f.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%`); where.push(`name ILIKE $${params.length}`); }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = Number((await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM jobs ${w}`, params)).rows[0]?.n ?? 0);
    params.push(limit, offset);
    const { rows } = await this.pool.query<JobRow>(`SELECT * FROM jobs ${w} ORDER BY seq LIMIT $${params.length - 1} OFFSET $${params.length}`, params);
    return { rows, total };
  }

  async update(id: string, patch: Partial<Pick<JobRow, 'status' | 'status_reason' | 'spec' | 'error' | 'name' | 'source_connection_id' | 'dest_connection_id'>> & { startedNow?: boolean; finishedNow?: boolean; bumpRun?: boolean }): Promise<JobRow | undefined> {
    const sets: string[] = ['updated_at = now()', `modify_index = nextval('modify_index')`];
    const params: unknown[] = [id];
    for (const key of ['status', 'status_reason', 'error', 'name', 'source_connection_id', 'dest_connection_id'] as const) {
      if (patch[key] !== undefined) { params.push(patch[key]); sets.push(`${key} = $${params.length}`); }
    }
    if (patch.spec) { params.push(JSON.stringify(patch.spec)); sets.push(`spec = $${params.length}`); }
    if (patch.startedNow) sets.push('started_at = coalesce(started_at, now())', 'finished_at = NULL');
    if (patch.finishedNow) sets.push('finished_at = now()');
    if (patch.bumpRun) sets.push('run_id = run_id + 1');
    const { rows } = await this.pool.query<JobRow>(`UPDATE jobs SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, params);
    return rows[0];
  }

  /** Compare-and-set the status: only moves from one of `from`. Returns the row if it moved. */
  async transition(id: string, from: JobStatus[], to: JobStatus, extra: { reason?: string | null; error?: string | null; bumpRun?: boolean; finished?: boolean; started?: boolean } = {}): Promise<JobRow | undefined> {
    const { rows } = await this.pool.query<JobRow>(
      `UPDATE jobs SET status = $3, status_reason = $4, error = coalesce($5, CASE WHEN $3 = 'running' THEN NULL ELSE error END),
         run_id = run_id + CASE WHEN $6 THEN 1 ELSE 0 END,
         finished_at = CASE WHEN $7 THEN now() ELSE finished_at END,
         started_at = CASE WHEN $8 THEN coalesce(started_at, now()) ELSE started_at END,
         updated_at = now(), modify_index = nextval('modify_index')
       WHERE id = $1 AND status = ANY($2) RETURNING *`,
      [id, from, to, extra.reason ?? null, extra.error ?? null, extra.bumpRun ?? false, extra.finished ?? false, extra.started ?? false],
    );
    return rows[0];
  }

  /**
   * Start a running job's run over: a new run id with `state` replacing the
   * old one, only if it is still running in `runId` (compare-and-set). Tasks
   * of the old run exit at their next check. Returns the row if it moved.
   */
  async restartRun(id: string, runId: number, state: JobRunState, reason: string): Promise<JobRow | undefined> {
    const { rows } = await this.pool.query<JobRow>(
      `UPDATE jobs SET run_id = run_id + 1, state = $3::jsonb, status_reason = $4, updated_at = now(), modify_index = nextval('modify_index')
       WHERE id = $1 AND run_id = $2 AND status = 'running' RETURNING *`,
      [id, runId, JSON.stringify(state), reason],
    );
    return rows[0];
  }

  /** Merge into jobs.state (jsonb ||) for the given run only. */
  async mergeState(id: string, runId: number, state: Partial<JobRunState>): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE jobs SET state = state || $3::jsonb, updated_at = now() WHERE id = $1 AND run_id = $2`, [id, runId, JSON.stringify(state)]);
    return (rowCount ?? 0) > 0;
  }

  async mergeProgress(id: string, progress: Partial<JobProgressData>): Promise<void> {
    await this.pool.query(`UPDATE jobs SET progress = progress || $2::jsonb, updated_at = now() WHERE id = $1`, [id, JSON.stringify(progress)]);
  }

  async mergeMetrics(id: string, metrics: Partial<JobMetricsData>): Promise<void> {
    await this.pool.query(`UPDATE jobs SET metrics = metrics || $2::jsonb WHERE id = $1`, [id, JSON.stringify(metrics)]);
  }

  async resetState(id: string): Promise<void> {
    await this.pool.query(`UPDATE jobs SET state = '{}'::jsonb, progress = '{}'::jsonb WHERE id = $1`, [id]);
  }

  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM jobs WHERE id = $1', [id]);
    return (rowCount ?? 0) > 0;
  }

  async maxModifyIndex(): Promise<string> {
    const { rows } = await this.pool.query<{ v: string | null }>('SELECT greatest((SELECT max(modify_index) FROM jobs), (SELECT last_value FROM modify_index)) AS v');
    return rows[0]?.v ?? '0';
  }

  // Tasks

  async upsertTask(t: { jobId: string; kind: string; name: string; status?: TaskState; nodeHint?: string | null; queue?: string | null; placement?: string | null; detail?: Record<string, unknown> }): Promise<TaskRow> {
    const { rows } = await this.pool.query<TaskRow>(
      `INSERT INTO tasks (id, job_id, kind, name, status, node_hint, queue, placement, detail) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
       ON CONFLICT (job_id, name) DO UPDATE SET status = EXCLUDED.status, queue = EXCLUDED.queue, placement = EXCLUDED.placement,
         node_hint = coalesce(EXCLUDED.node_hint, tasks.node_hint), detail = tasks.detail || EXCLUDED.detail, error = NULL, updated_at = now()
       RETURNING *`,
      [randomUUID(), t.jobId, t.kind, t.name, t.status ?? 'pending', t.nodeHint ?? null, t.queue ?? null, t.placement ?? null, JSON.stringify(t.detail ?? {})],
    );
    return rows[0]!;
  }

  /** Compare-and-set of a task's status: true when this call moved it from `from` to `to`. */
  async claimTask(id: string, from: TaskState, to: TaskState): Promise<boolean> {
    const claimed = await this.pool.query(`UPDATE tasks SET status = $2, updated_at = now() WHERE id = $1 AND status = $3`, [id, to, from]);
    return !!claimed.rowCount;
  }

  /**
   * Compare-and-set of many tasks' status: those matching `where` whose status is one of `from` move to `to`
   * (with the node and progress given); the others are left as they are.
   */
  async moveTasks(
    where: { ids: readonly string[] } | { jobId: string; names?: readonly string[] }, from: readonly string[], to: TaskState,
    set: { nodeId?: string | null; progress?: Record<string, unknown> } = {},
  ): Promise<void> {
    const params: unknown[] = [to, from];
    const sets = ['status = $1'];
    if (set.nodeId !== undefined) { params.push(set.nodeId); sets.push(`node_id = $${params.length}`); }
    if (set.progress !== undefined) { params.push(JSON.stringify(set.progress)); sets.push(`progress = progress || $${params.length}::jsonb`); }
    sets.push('updated_at = now()');
    const conds: string[] = [];
    if ('ids' in where) {
      params.push(where.ids); conds.push(`id = ANY($${params.length})`);
    } else {
      params.push(where.jobId); conds.push(`job_id = $${params.length}`);
      if (where.names) { params.push(where.names); conds.push(`name = ANY($${params.length})`); }
    }
    conds.push('status = ANY($2)');
    await this.pool.query(`UPDATE tasks SET ${sets.join(', ')} WHERE ${conds.join(' AND ')}`, params);
  }

  /** A job's status and run, read cheaply (a streaming task asks before each transaction it applies). */
  async statusAndRun(jobId: string): Promise<{ status: JobStatus; run_id: number } | undefined> {
    const { rows } = await this.pool.query<{ status: JobStatus; run_id: number }>('SELECT status, run_id FROM jobs WHERE id = $1', [jobId]);
    return rows[0];
  }

  async updateTask(id: string, patch: { status?: TaskState; nodeId?: string | null; position?: unknown; progress?: Record<string, unknown>; error?: string | null; attempt?: boolean }): Promise<void> {
    const sets = ['updated_at = now()'];
    const params: unknown[] = [id];
    if (patch.status !== undefined) { params.push(patch.status); sets.push(`status = $${params.length}`); }
    if (patch.nodeId !== undefined) { params.push(patch.nodeId); sets.push(`node_id = $${params.length}`); }
    if (patch.position !== undefined) { params.push(JSON.stringify(patch.position)); sets.push(`position = $${params.length}`); }
    if (patch.progress !== undefined) { params.push(JSON.stringify(patch.progress)); sets.push(`progress = progress || $${params.length}::jsonb`); }
    if (patch.error !== undefined) { params.push(patch.error); sets.push(`error = $${params.length}`); }
    if (patch.attempt) sets.push('attempts = attempts + 1');
    await this.pool.query(`UPDATE tasks SET ${sets.join(', ')} WHERE id = $1`, params);
  }

  /** "job name: task name" by task id, newest tasks first (the queue dashboard's labels). */
  async taskLabels(limit = 20_000): Promise<Map<string, string>> {
    const { rows } = await this.pool.query<{ id: string; label: string }>(
      `SELECT t.id, j.name || ': ' || t.name AS label FROM tasks t JOIN jobs j ON j.id = t.job_id ORDER BY t.updated_at DESC LIMIT $1`, [limit]);
    return new Map(rows.map((r) => [r.id, r.label]));
  }

  async tasksOf(jobIds: readonly string[]): Promise<TaskRow[]> {
    const { rows } = await this.pool.query<TaskRow>('SELECT * FROM tasks WHERE job_id = ANY($1::uuid[]) ORDER BY created_at, name', [jobIds]);
    return rows;
  }

  async task(id: string): Promise<TaskRow | undefined> {
    const { rows } = await this.pool.query<TaskRow>('SELECT * FROM tasks WHERE id = $1', [id]);
    return rows[0];
  }

  async chunkTotals(jobId: string): Promise<{ done: number; total: number; rows: number }> {
    const { rows } = await this.pool.query<{ done: string; total: string; rows: string }>(
      `SELECT count(*) FILTER (WHERE status = 'complete') AS done, count(*) AS total, coalesce(sum((progress->>'rows')::bigint), 0) AS rows
       FROM tasks WHERE job_id = $1 AND kind = 'snapshot-chunk'`, [jobId]);
    const r = rows[0]!;
    return { done: Number(r.done), total: Number(r.total), rows: Number(r.rows) };
  }

  // Logs

  async log(jobId: string, level: string, message: string): Promise<void> {
    await this.pool.query('INSERT INTO job_logs (job_id, level, message) VALUES ($1, $2, $3)', [jobId, level, message]).catch(() => undefined);
  }

  async logs(jobId: string, limit: number): Promise<{ id: string; at: Date; level: string; message: string }[]> {
    const { rows } = await this.pool.query<{ id: string; at: Date; level: string; message: string }>(
      'SELECT * FROM (SELECT id, at, level, message FROM job_logs WHERE job_id = $1 ORDER BY id DESC LIMIT $2) t ORDER BY id', [jobId, limit]);
    return rows;
  }
}
