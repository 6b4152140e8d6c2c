/**
 * The cluster pool: named worker capacity that users lease (apply), give back
 * (release), stop and start. A cluster is one BullMQ queue
 * (`tasks-cluster-<name>`) served by workers started with `--cluster NAME`;
 * its `size` is the queue's global concurrency (task slots across all of its
 * workers). Placement (placementFor) sends the tasks of a user's jobs to a
 * cluster the user holds.
 *
 * Lease states (columns user_id / release_status):
 *
 *   free (user_id NULL) --apply--> held (user_id = U)
 *   held --release--> releasing --(jobs moved, queue reset)--> free (released)
 *                        \--error--> failed (still held; release again)
 *
 * Invariants: a releasing cluster is neither held (placement ignores it) nor
 * free (apply skips it). Stopping pauses the queue and pauses the jobs whose
 * tasks sit on it (reason "cluster NAME stopped"); starting resumes exactly
 * those. Release moves running tasks to the shared pool (their jobs restart
 * from their checkpoints), resets the queue and frees the cluster.
 */
import { Role, roleAllows, type Principal } from '../auth/roles.ts';
import { AppError, ErrorCode, badInput, notFound } from '../errors.ts';
import { Topic, type AppPubSub } from '../events/pubsub.ts';
import type { Logger } from '../observability/logger.ts';
import { clusterQueueName } from '../queues/queue-names.ts';
import type { QueueSet } from '../queues/queue-set.ts';
import { ClusterStatus, ReleaseStatus, type ClusterFilterData, type ClusterRepo, type ClusterRow, type LeaseCondition } from '../store/cluster.repo.ts';
import type { JobService } from './job.service.ts';
import { JobStatus } from '../domain/job-model.ts';
import type { NodeRegistry } from './node-registry.ts';
import { sharedPoolPlacement, type Placement } from './placement.ts';
import type { CelloVocabulary } from './legacy-vocabulary.ts';

export { ClusterStatus, ReleaseStatus } from '../store/cluster.repo.ts';

/** What callers see of a cluster. */
export interface ClusterView {
  id: string;
  name: string;
  size: number;
  consensusPlugin: string;
  consensusMode: string;
  status: ClusterStatus;
  /** In Cello's spellings (OK, FAIL, '' when stopped): CelloVocabulary.health. */
  health: string;
  userId: string | null;
  applyTs: string | null;
  releaseTs: string | null;
  releaseStatus: ReleaseStatus;
  releaseProgress: number;
  releaseMessage: string;
  queue: string;
  apiUrl: string;
  daemonUrl: string;
  /** Node ids of the live workers serving this cluster. */
  workers: string[];
  createdAt: string;
}

export enum ClusterEventKind {
  Created = 'created',
  Deleted = 'deleted',
  Applied = 'applied',
  Releasing = 'releasing',
  Released = 'released',
  ReleaseFailed = 'release-failed',
  Stopped = 'stopped',
  Started = 'started',
}

export interface ClusterEventData {
  kind: ClusterEventKind;
  cluster: ClusterView;
  at: string;
  message?: string;
}

export interface ClusterInputData {
  name: string;
  size: number;
  consensusPlugin?: string | null;
  consensusMode?: string | null;
}

export interface ApplyInputData {
  userId?: string | null;
  consensusPlugin?: string | null;
  consensusMode?: string | null;
  size?: number | null;
  allowMultiple?: boolean | null;
}

export interface ClusterServiceOptions {
  repo: ClusterRepo;
  queues: QueueSet;
  nodes: NodeRegistry;
  jobs: JobService;
  pubSub: AppPubSub;
  logger: Logger;
  /** Redis URL of the queues; only scheme, host, port and database reach `daemonUrl`. */
  redisUrl: string;
  /** The gateway's URL, shown as `apiUrl`. */
  apiUrl: () => string;
  /** Allowed `consensus_plugin` labels; '' (none) is always allowed. */
  consensusPlugins: readonly string[];
  /** Allowed `consensus_mode` labels; '' (none) is always allowed. */
  consensusModes: readonly string[];
  /** Cello's words: health spellings and messages (rest-compat/cello/cello.dialect.ts). */
  cello: CelloVocabulary;
  /** Longest wait for a released cluster's active tasks to leave. Default 15000 ms. */
  drainTimeoutMs?: number;
}

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const stoppedReason = (name: string) => `cluster ${name} stopped`;
const releasedReason = (name: string) => `cluster ${name} released: moving to the shared pool`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ClusterService {
  readonly repo: ClusterRepo;
  private readonly releases = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: ClusterServiceOptions) {
    this.repo = opts.repo;
  }

  // ------------------------------------------------------------ who may do what

  isAdmin(p: Principal): boolean { return p.open || roleAllows(p.role, Role.Admin); }

  /** Admins act for any user_id (default: themselves); everyone else acts as their token's name. */
  actingUser(p: Principal, requested: string | null | undefined): string {
    if (requested === undefined || requested === null || requested === '') return p.name;
    if (!this.isAdmin(p) && requested !== p.name) {
      throw new AppError(ErrorCode.Forbidden, `user_id ${requested} is not yours: a non-admin token acts as user_id "${p.name}"`);
    }
    return requested;
  }

  /** A cluster the caller may act on: admins any, others only the ones they hold. Unknown and hidden look alike. */
  private async owned(p: Principal, ref: string): Promise<ClusterRow> {
    const row = await this.repo.find(ref);
    if (!row) throw notFound('cluster', ref);
    if (this.isAdmin(p)) return row;
    if (row.user_id === null) throw new AppError(ErrorCode.Forbidden, `cluster ${row.name} is not held by ${p.name}`);
    if (row.user_id !== p.name) throw notFound('cluster', ref);
    return row;
  }

  // ------------------------------------------------------------ views

  private daemonUrl(name: string): string {
    const u = new URL(this.opts.redisUrl);
    const db = u.pathname.replace(/^\//, '') || '0';
    return `${u.protocol}//${u.hostname}:${u.port || 6379}/${db}/${clusterQueueName(name)}`;
  }

  private async workersByCluster(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const n of await this.opts.nodes.list()) {
      if (!n.cluster || n.role === 'serve') continue;
      out.set(n.cluster, [...(out.get(n.cluster) ?? []), n.id]);
    }
    return out;
  }

  private view(row: ClusterRow, workers: Map<string, string[]>): ClusterView {
    const w = workers.get(row.name) ?? [];
    return {
      id: row.id, name: row.name, size: row.size, consensusPlugin: row.consensus_plugin, consensusMode: row.consensus_mode,
      status: row.status, health: this.opts.cello.health(row.status === ClusterStatus.Stopped, w.length),
      userId: row.user_id, applyTs: row.apply_ts?.toISOString() ?? null, releaseTs: row.release_ts?.toISOString() ?? null,
      releaseStatus: row.release_status, releaseProgress: row.release_progress, releaseMessage: row.release_message,
      queue: clusterQueueName(row.name), apiUrl: this.opts.apiUrl(), daemonUrl: this.daemonUrl(row.name), workers: w,
      createdAt: row.created_at.toISOString(),
    };
  }

  private async views(rows: ClusterRow[]): Promise<ClusterView[]> {
    const workers = await this.workersByCluster();
    return rows.map((r) => this.view(r, workers));
  }

  private async publish(kind: ClusterEventKind, row: ClusterRow, message?: string): Promise<ClusterView> {
    const [v] = await this.views([row]);
    const event: ClusterEventData = { kind, cluster: v!, at: new Date().toISOString(), ...(message ? { message } : {}) };
    this.opts.pubSub.publish(Topic.ClusterEvents, event as never);
    return v!;
  }

  // ------------------------------------------------------------ queries

  /** Non-admins see the clusters they hold and free ones. */
  async list(p: Principal, f: ClusterFilterData, offset: number, limit: number): Promise<{ rows: ClusterView[]; total: number }> {
    const filter = this.isAdmin(p) ? f : { ...f, visibleTo: p.name };
    const r = await this.repo.list(filter, offset, limit);
    return { rows: await this.views(r.rows), total: r.total };
  }

  /** By id or name; null when unknown or held by someone else (non-admin). */
  async get(p: Principal, ref: string): Promise<ClusterView | null> {
    const row = await this.repo.find(ref);
    if (!row || (!this.isAdmin(p) && row.user_id !== null && row.user_id !== p.name)) return null;
    return (await this.views([row]))[0]!;
  }

  // ------------------------------------------------------------ admin

  private checkLabels(plugin: string | null | undefined, mode: string | null | undefined): { plugin?: string; mode?: string } {
    if (plugin && !this.opts.consensusPlugins.includes(plugin)) throw badInput(this.opts.cello.invalidConsensusPlugin, 'consensusPlugin');
    if (mode && !this.opts.consensusModes.includes(mode)) throw badInput(this.opts.cello.invalidConsensusMode, 'consensusMode');
    return { plugin: plugin || undefined, mode: mode || undefined };
  }

  private checkSize(size: number | null | undefined, required: boolean): number | undefined {
    if (size === undefined || size === null) {
      if (required) throw badInput('size is required', 'size');
      return undefined;
    }
    if (!Number.isInteger(size) || size < 1 || size > 10_000) throw badInput(this.opts.cello.invalidSize, 'size');
    return size;
  }

  /** The queue's global concurrency is the cluster's slot count. */
  private async applySlots(row: ClusterRow): Promise<void> {
    await this.opts.queues.get(clusterQueueName(row.name)).setGlobalConcurrency(row.size);
  }

  async create(input: ClusterInputData, fromConfig = false): Promise<ClusterView> {
    if (!NAME_RE.test(input.name)) throw badInput(`cluster name "${input.name}" must match ${NAME_RE.source}`, 'name');
    const size = this.checkSize(input.size, true)!;
    const labels = this.checkLabels(input.consensusPlugin, input.consensusMode);
    const row = await this.repo.create({ name: input.name, size, consensusPlugin: labels.plugin, consensusMode: labels.mode, fromConfig });
    if (!row) throw new AppError(ErrorCode.Conflict, `a cluster named "${input.name}" already exists`);
    await this.applySlots(row);
    return this.publish(ClusterEventKind.Created, row);
  }

  /** Create the configured clusters that are missing; never deletes. Returns the names created. */
  async applyPool(defs: readonly { name: string; size: number; consensus_plugin?: string; consensus_mode?: string }[]): Promise<string[]> {
    const created: string[] = [];
    for (const d of defs) {
      const existing = await this.repo.find(d.name);
      if (existing) { await this.applySlots(existing); continue; }
      try {
        await this.create({ name: d.name, size: d.size, consensusPlugin: d.consensus_plugin, consensusMode: d.consensus_mode }, true);
        created.push(d.name);
      } catch (err) {
        if (err instanceof AppError && err.code === ErrorCode.Conflict) continue; // another gateway created it first
        throw err;
      }
    }
    return created;
  }

  /** Unfinished releases (a gateway died mid-release) are finished by whoever starts next. */
  resumeReleases(): void {
    void this.repo.unfinishedReleases().then((rows) => { for (const r of rows) this.track(this.runRelease(r)); }).catch(() => undefined);
  }

  async delete(ref: string): Promise<boolean> {
    const row = await this.repo.find(ref);
    if (!row) return false;
    if (row.user_id !== null) throw new AppError(ErrorCode.InvalidState, `cluster ${row.name} is held by ${row.user_id}: release it first`);
    await this.repo.delete(row.id);
    await this.opts.queues.get(clusterQueueName(row.name)).obliterate({ force: true }).catch(() => undefined);
    await this.publish(ClusterEventKind.Deleted, row);
    return true;
  }

  // ------------------------------------------------------------ apply / release

  /**
   * Cello's apply: the user's held cluster (matching the request) is returned
   * again unless `allowMultiple`; otherwise one free matching cluster is
   * leased atomically. None free: "No available res for {user}".
   */
  async apply(p: Principal, input: ApplyInputData): Promise<ClusterView> {
    const user = this.actingUser(p, input.userId);
    const labels = this.checkLabels(input.consensusPlugin, input.consensusMode);
    const cond: LeaseCondition = { consensusPlugin: labels.plugin, consensusMode: labels.mode, size: this.checkSize(input.size, false) };
    if (!input.allowMultiple) {
      const [held] = await this.repo.heldBy(user, cond);
      if (held) return (await this.views([held]))[0]!;
    }
    // SKIP LOCKED may pass over a row another applicant locked and then lost; try again while any looks free.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await this.repo.lease(user, cond);
      if (row) return this.publish(ClusterEventKind.Applied, row, `leased to ${user}`);
      const free = await this.repo.list({ userId: '', consensusPlugin: cond.consensusPlugin, consensusMode: cond.consensusMode, size: cond.size, status: ClusterStatus.Running }, 0, 0);
      if (free.total === 0) break;
    }
    throw new AppError(ErrorCode.Conflict, this.opts.cello.noAvailableCluster(user), { reason: 'NO_AVAILABLE_CLUSTER', user });
  }

  /**
   * Release one cluster (clusterId) or every cluster a user holds (userId).
   * Returns at once with the clusters marked `releasing`; the work runs in
   * the background and shows in releaseStatus/releaseProgress.
   */
  async release(p: Principal, by: { clusterId?: string | null; userId?: string | null }): Promise<ClusterView[]> {
    let rows: ClusterRow[];
    if (by.clusterId) {
      const row = await this.owned(p, by.clusterId);
      if (row.user_id === null) return this.views([row]); // already free: nothing to do (Cello answered OK too)
      rows = [row];
    } else if (by.userId || !this.isAdmin(p)) {
      rows = await this.repo.heldBy(this.actingUser(p, by.userId));
    } else {
      throw badInput('cluster_id or user_id is required', 'clusterId');
    }
    const out: ClusterRow[] = [];
    for (const row of rows) {
      const marked = await this.repo.beginRelease(row.id);
      if (!marked) { out.push((await this.repo.find(row.id)) ?? row); continue; }
      await this.publish(ClusterEventKind.Releasing, marked);
      this.track(this.runRelease(marked));
      out.push(marked);
    }
    return this.views(out);
  }

  private track(p: Promise<void>): void {
    this.releases.add(p);
    void p.finally(() => this.releases.delete(p));
  }

  private async progress(row: ClusterRow, pct: number, message: string): Promise<void> {
    const r = await this.repo.releaseProgress(row.id, pct, message);
    if (r) await this.publish(ClusterEventKind.Releasing, r, message);
  }

  private async runRelease(row: ClusterRow): Promise<void> {
    const queueName = clusterQueueName(row.name);
    const log = this.opts.logger.child({ cluster: row.name });
    try {
      const running = await this.repo.jobsOnQueue(queueName, [JobStatus.Running, JobStatus.Pending]);
      const stopped = await this.repo.jobsOnQueue(queueName, [JobStatus.Paused], stoppedReason(row.name));
      const all = [...running, ...stopped];
      await this.progress(row, 10, `moving ${all.length} job(s) to the shared pool`);
      for (const [i, id] of all.entries()) {
        if (this.closed) return; // the next gateway to start finishes it
        try {
          if (running.includes(id)) await this.opts.jobs.pause(id, releasedReason(row.name));
          await this.opts.jobs.resume(id);
        } catch (err) {
          log.warn({ err, job: id }, 'could not move a job off a released cluster');
        }
        await this.progress(row, 10 + Math.round((70 * (i + 1)) / all.length), `moved ${i + 1} of ${all.length} job(s)`);
      }
      await this.progress(row, 80, 'resetting the cluster queue');
      const queue = this.opts.queues.get(queueName);
      const deadline = Date.now() + (this.opts.drainTimeoutMs ?? 15_000);
      while (Date.now() < deadline && !this.closed && (await queue.getActiveCount()) > 0) await sleep(200);
      await queue.obliterate({ force: true });
      await queue.resume();
      await this.applySlots(row);
      const done = await this.repo.finishRelease(row.id);
      if (done) await this.publish(ClusterEventKind.Released, done, 'returned to the free pool');
      log.info('cluster released');
    } catch (err) {
      log.warn({ err }, 'cluster release failed');
      const failed = await this.repo.failRelease(row.id, `release failed: ${(err as Error).message}`).catch(() => undefined);
      if (failed) await this.publish(ClusterEventKind.ReleaseFailed, failed, failed.release_message).catch(() => undefined);
    }
  }

  // ------------------------------------------------------------ start / stop

  /** Pause the cluster's queue and the jobs running on it; positions are kept. */
  async stop(p: Principal, ref: string): Promise<ClusterView> {
    const row = await this.owned(p, ref);
    const queueName = clusterQueueName(row.name);
    const stopped = (await this.repo.setStatus(row.id, ClusterStatus.Stopped))!;
    await this.opts.queues.get(queueName).pause();
    for (const id of await this.repo.jobsOnQueue(queueName, [JobStatus.Running, JobStatus.Pending])) {
      await this.opts.jobs.pause(id, stoppedReason(row.name)).catch((err) => this.opts.logger.warn({ err, job: id }, 'could not pause a job of a stopped cluster'));
    }
    return this.publish(ClusterEventKind.Stopped, stopped);
  }

  /** Resume the queue and the jobs the stop paused; they continue from their checkpoints. */
  async start(p: Principal, ref: string): Promise<ClusterView> {
    const row = await this.owned(p, ref);
    const queueName = clusterQueueName(row.name);
    const started = (await this.repo.setStatus(row.id, ClusterStatus.Running))!;
    await this.opts.queues.get(queueName).resume();
    for (const id of await this.repo.jobsOnQueue(queueName, [JobStatus.Paused], stoppedReason(row.name))) {
      await this.opts.jobs.resume(id).catch((err) => this.opts.logger.warn({ err, job: id }, 'could not resume a job of a started cluster'));
    }
    return this.publish(ClusterEventKind.Started, started);
  }

  async restart(p: Principal, ref: string): Promise<ClusterView> {
    await this.stop(p, ref);
    return this.start(p, ref);
  }

  // ------------------------------------------------------------ placement

  private usableBy(row: ClusterRow, owner: string | null): boolean {
    return row.release_status !== ReleaseStatus.Releasing && (row.user_id === null || row.user_id === owner);
  }

  /**
   * Where a task of `owner`'s job runs:
   * 1. hint `cluster:<id|name>`: that cluster, unless another user holds it;
   * 2. hint = id of a live worker in a cluster: that cluster, same rule;
   * 3. a cluster the owner holds (oldest lease);
   * 4. the shared pool.
   */
  async placementFor(owner: string | null, hint: string | null): Promise<Placement> {
    let note: string | undefined;
    if (hint?.startsWith('cluster:')) {
      const ref = hint.slice('cluster:'.length);
      const row = await this.repo.find(ref);
      if (row && this.usableBy(row, owner)) return { queue: clusterQueueName(row.name), placement: `cluster ${row.name} (requested)` };
      note = row ? `requested cluster ${row.name} is held by another user` : `requested cluster ${ref} does not exist`;
    } else if (hint) {
      const node = await this.opts.nodes.get(hint);
      if (node?.cluster) {
        const row = await this.repo.find(node.cluster);
        if (row && this.usableBy(row, owner)) return { queue: clusterQueueName(row.name), placement: `cluster ${row.name} (node ${hint} serves it)` };
      }
    }
    if (owner) {
      const [held] = await this.repo.heldBy(owner);
      if (held) return { queue: clusterQueueName(held.name), placement: `cluster ${held.name} (held by ${owner})` };
    }
    return sharedPoolPlacement(hint, note);
  }

  // ------------------------------------------------------------ events

  /** Cluster events the caller may see, until the subscriber leaves. */
  async *events(p: Principal): AsyncGenerator<ClusterEventData> {
    const it = (this.opts.pubSub.subscribe(Topic.ClusterEvents) as AsyncIterable<ClusterEventData>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        const c = n.value.cluster;
        if (this.isAdmin(p) || c.userId === null || c.userId === p.name) yield n.value;
      }
    } finally {
      await it.return?.();
    }
  }

  /** Waits for background releases to reach a step boundary. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.releases]);
  }
}
