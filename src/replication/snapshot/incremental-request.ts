/**
 * Incremental snapshot requests (snapshotTables, addTables): what to copy
 * again and how far the copy got, kept in Redis next to the job's feed so a
 * capture task killed mid-copy resumes from its last chunk
 * (docs/consistency.md, "Incremental snapshots").
 *
 * One hash per job, one JSON field per request. The gateway only adds
 * requests (HSET of a new field); the job's capture task is the only writer
 * of a request after that, so there is no read-modify-write race.
 *
 * ```
 * pending --tables listed--> running --last chunk--> done
 *                              \--error (bad where, ...)--> failed
 * ```
 */
import type { Redis } from 'ioredis';
import type { TableFilter } from '../connection-config.ts';
import type { ChunkBounds, TableInfo } from '../table-info.ts';
import { incrementalSnapshotKey } from '../feed/feed-keys.ts';

export enum IncrementalStatus {
  Pending = 'pending',
  Running = 'running',
  Done = 'done',
  Failed = 'failed',
}

export interface IncrementalRequest {
  /** Sorts in creation order: "<ms since epoch, 15 digits>-<random>". */
  id: string;
  filter: TableFilter;
  /** Row filter (the cached queries' WHERE subset); keyed tables only. */
  where?: string;
  /**
   * Only a capture of this job run or a later one may copy it: addTables
   * restarts the tasks with the new filter, and the old run's capture, which
   * does not stream the new tables, must not copy them.
   */
  minRun?: number;
  /** Why: 'snapshotTables' or 'addTables'. */
  reason: string;
  status: IncrementalStatus;
  error?: string;
  createdAt: string;
  finishedAt?: string;
  /** Resolved once from `filter` when the copy starts. */
  tables?: TableInfo[];
  tableIndex: number;
  /** Key ranges of the table being copied, planned when it starts. */
  chunks?: ChunkBounds[];
  chunkIndex: number;
  chunksDone: number;
  chunksTotal: number;
  rowsDone: number;
  rowsEstimated: number;
  /**
   * Keyless tables copied whole: the copy's snapshot cover (snapshot-cover.ts)
   * per "schema.table". Stream changes it holds are not appended again.
   */
  covers?: Record<string, string>;
}

/** Requests kept after they finished (their covers stay in force, their outcome stays readable). */
const KEEP_FINISHED = 5;

export function newIncrementalRequest(filter: TableFilter, where: string | undefined, reason: string, minRun?: number): IncrementalRequest {
  const id = `${String(Date.now()).padStart(15, '0')}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    id, filter, ...(where ? { where } : {}), ...(minRun !== undefined ? { minRun } : {}), reason, status: IncrementalStatus.Pending, createdAt: new Date().toISOString(),
    tableIndex: 0, chunkIndex: 0, chunksDone: 0, chunksTotal: 0, rowsDone: 0, rowsEstimated: 0,
  };
}

export class IncrementalRequestStore {
  private readonly key: string;

  constructor(private readonly redis: Redis, prefix: string, jobId: string) {
    this.key = incrementalSnapshotKey(prefix, jobId);
  }

  async list(): Promise<IncrementalRequest[]> {
    const all = await this.redis.hgetall(this.key);
    return Object.values(all).map((v) => JSON.parse(v) as IncrementalRequest).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The oldest request not finished that a capture of run `runId` may copy, if any. */
  async active(runId: number): Promise<IncrementalRequest | undefined> {
    return (await this.list()).find((r) => (r.status === IncrementalStatus.Pending || r.status === IncrementalStatus.Running) && (r.minRun ?? 0) <= runId);
  }

  async save(req: IncrementalRequest): Promise<void> {
    await this.redis.hset(this.key, req.id, JSON.stringify(req));
    if (req.status === IncrementalStatus.Done || req.status === IncrementalStatus.Failed) await this.prune();
  }

  async clear(): Promise<void> {
    await this.redis.del(this.key);
  }

  private async prune(): Promise<void> {
    const finished = (await this.list()).filter((r) => r.status === IncrementalStatus.Done || r.status === IncrementalStatus.Failed);
    const drop = finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED)).map((r) => r.id);
    if (drop.length) await this.redis.hdel(this.key, ...drop);
  }
}
