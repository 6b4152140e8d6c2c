/**
 * Clusters in the metadata database. The lease is one column (`user_id`):
 * NULL = free. Leasing is a single UPDATE over a row picked with
 * `FOR UPDATE SKIP LOCKED`, so concurrent applicants never get the same row
 * and never block on each other's candidate.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

export enum ClusterStatus {
  Running = 'running',
  Stopped = 'stopped',
}

export enum ReleaseStatus {
  None = 'none',
  Releasing = 'releasing',
  Released = 'released',
  Failed = 'failed',
}

export interface ClusterRow {
  id: string;
  name: string;
  size: number;
  consensus_plugin: string;
  consensus_mode: string;
  status: ClusterStatus;
  user_id: string | null;
  apply_ts: Date | null;
  release_ts: Date | null;
  release_status: ReleaseStatus;
  release_progress: number;
  release_message: string;
  from_config: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface ClusterFilterData {
  ids?: string[];
  name?: string;
  consensusPlugin?: string;
  consensusMode?: string;
  size?: number;
  /** Holder; '' = free clusters only. */
  userId?: string;
  status?: ClusterStatus;
  /** Only clusters released at least once. */
  released?: boolean;
  /** Restrict to clusters this user holds plus free ones (non-admin callers). */
  visibleTo?: string;
}

export interface LeaseCondition {
  consensusPlugin?: string;
  consensusMode?: string;
  size?: number;
}

export interface NewCluster {
  name: string;
  size: number;
  consensusPlugin?: string;
  consensusMode?: string;
  fromConfig?: boolean;
}

function where(f: ClusterFilterData): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  const add = (cond: (n: string) => string, v: unknown) => { args.push(v); parts.push(cond(`$${args.length}`)); };
  if (f.ids) add((n) => `id::text = ANY(${n})`, f.ids);
  if (f.name !== undefined) add((n) => `name = ${n}`, f.name);
  if (f.consensusPlugin !== undefined) add((n) => `consensus_plugin = ${n}`, f.consensusPlugin);
  if (f.consensusMode !== undefined) add((n) => `consensus_mode = ${n}`, f.consensusMode);
  if (f.size !== undefined) add((n) => `size = ${n}`, f.size);
  if (f.userId === '') parts.push('user_id IS NULL');
  else if (f.userId !== undefined) add((n) => `user_id = ${n}`, f.userId);
  if (f.status !== undefined) add((n) => `status = ${n}`, f.status);
  if (f.released) parts.push('release_ts IS NOT NULL');
  if (f.visibleTo !== undefined) add((n) => `(user_id IS NULL OR user_id = ${n})`, f.visibleTo);
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class ClusterRepo {
  constructor(readonly pool: pg.Pool) {}

  async create(c: NewCluster): Promise<ClusterRow | undefined> {
    const r = await this.pool.query<ClusterRow>(
      `INSERT INTO clusters (id, name, size, consensus_plugin, consensus_mode, from_config) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (name) DO NOTHING RETURNING *`,
      [randomUUID(), c.name, c.size, c.consensusPlugin ?? '', c.consensusMode ?? '', c.fromConfig ?? false],
    );
    return r.rows[0];
  }

  /** By id or name. */
  async find(ref: string): Promise<ClusterRow | undefined> {
    const r = UUID_RE.test(ref)
      ? await this.pool.query<ClusterRow>('SELECT * FROM clusters WHERE id = $1 OR name = $2', [ref, ref])
      : await this.pool.query<ClusterRow>('SELECT * FROM clusters WHERE name = $1', [ref]);
    return r.rows[0];
  }

  async list(f: ClusterFilterData, offset: number, limit: number): Promise<{ rows: ClusterRow[]; total: number }> {
    const w = where(f);
    const total = Number((await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM clusters ${w.sql}`, w.args)).rows[0]!.n);
    if (limit <= 0) return { rows: [], total };
    const rows = (await this.pool.query<ClusterRow>(`SELECT * FROM clusters ${w.sql} ORDER BY created_at, name OFFSET ${offset} LIMIT ${limit}`, w.args)).rows;
    return { rows, total };
  }

  async delete(id: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM clusters WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  /** Clusters a user holds (leased and not being released), oldest lease first. */
  async heldBy(userId: string, cond: LeaseCondition = {}): Promise<ClusterRow[]> {
    const w = where({ userId, consensusPlugin: cond.consensusPlugin, consensusMode: cond.consensusMode, size: cond.size });
    const r = await this.pool.query<ClusterRow>(`SELECT * FROM clusters ${w.sql} AND release_status <> 'releasing' ORDER BY apply_ts, name`, w.args);
    return r.rows;
  }

  /**
   * Lease one free, running, matching cluster to `userId` atomically.
   * Undefined when none is free. Two racing callers never get the same row.
   */
  async lease(userId: string, cond: LeaseCondition): Promise<ClusterRow | undefined> {
    const w = where({ userId: '', consensusPlugin: cond.consensusPlugin, consensusMode: cond.consensusMode, size: cond.size, status: ClusterStatus.Running });
    const n = w.args.length;
    const r = await this.pool.query<ClusterRow>(
      `UPDATE clusters SET user_id = $${n + 1}, apply_ts = now(), release_ts = NULL, release_status = 'none', release_progress = 0, release_message = '', updated_at = now()
       WHERE id = (SELECT id FROM clusters ${w.sql} AND release_status <> 'releasing' ORDER BY created_at, name LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [...w.args, userId],
    );
    return r.rows[0];
  }

  /** Mark a held cluster as releasing; undefined when it is free or already releasing. */
  async beginRelease(id: string): Promise<ClusterRow | undefined> {
    const r = await this.pool.query<ClusterRow>(
      `UPDATE clusters SET release_status = 'releasing', release_progress = 0, release_message = 'release started', release_ts = now(), updated_at = now()
       WHERE id = $1 AND user_id IS NOT NULL AND release_status <> 'releasing' RETURNING *`,
      [id],
    );
    return r.rows[0];
  }

  async releaseProgress(id: string, progress: number, message: string): Promise<ClusterRow | undefined> {
    const r = await this.pool.query<ClusterRow>(
      'UPDATE clusters SET release_progress = $2, release_message = $3, updated_at = now() WHERE id = $1 RETURNING *', [id, progress, message]);
    return r.rows[0];
  }

  /** The release is done: back to the free pool, running. */
  async finishRelease(id: string): Promise<ClusterRow | undefined> {
    const r = await this.pool.query<ClusterRow>(
      `UPDATE clusters SET user_id = NULL, apply_ts = NULL, status = 'running', release_status = 'released', release_progress = 100,
         release_message = 'returned to the free pool', updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id],
    );
    return r.rows[0];
  }

  async failRelease(id: string, message: string): Promise<ClusterRow | undefined> {
    const r = await this.pool.query<ClusterRow>(
      "UPDATE clusters SET release_status = 'failed', release_message = $2, updated_at = now() WHERE id = $1 RETURNING *", [id, message]);
    return r.rows[0];
  }

  /** Releases left unfinished (a gateway died mid-release). */
  async unfinishedReleases(): Promise<ClusterRow[]> {
    return (await this.pool.query<ClusterRow>("SELECT * FROM clusters WHERE release_status = 'releasing'")).rows;
  }

  async setStatus(id: string, status: ClusterStatus): Promise<ClusterRow | undefined> {
    const r = await this.pool.query<ClusterRow>('UPDATE clusters SET status = $2, updated_at = now() WHERE id = $1 RETURNING *', [id, status]);
    return r.rows[0];
  }

  /** Jobs in `statuses` whose tasks of the current run sit on `queue`, optionally with a given status reason. */
  async jobsOnQueue(queue: string, statuses: string[], reason?: string): Promise<string[]> {
    const r = await this.pool.query<{ id: string }>(
      `SELECT DISTINCT j.id FROM jobs j JOIN tasks t ON t.job_id = j.id
       WHERE t.queue = $1 AND j.status = ANY($2) AND ($3::text IS NULL OR j.status_reason = $3)`,
      [queue, statuses, reason ?? null],
    );
    return r.rows.map((x) => x.id);
  }
}
