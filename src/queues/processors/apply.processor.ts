/**
 * The apply task (Udup "Dest"): waits for the snapshot, then applies the
 * job's feed to the destination in ParallelWorkers lanes (see
 * replication/pipeline/apply-runner.ts). A migration job completes once the
 * capture caught up and the feed is drained.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createApplier } from '../../replication/factory.ts';
import type { Redis } from 'ioredis';
import type { ChangeFeed } from '../../replication/feed/change-feed.ts';
import { feedKeys } from '../../replication/feed/feed-keys.ts';
import { openFeed } from '../../replication/feed/feed-registry.ts';
import { watchEcho } from '../../replication/feed/local-echo.ts';
import { runApply } from '../../replication/pipeline/apply-runner.ts';
import { JobStatus, JobType, wantsSnapshot } from '../../domain/job-model.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import type { TaskProcessor } from '../worker-host.ts';
import { SNAPSHOT_POLL_MS, TaskRun, type ReplicationDeps } from './task-run.ts';
import { TaskState } from '../../domain/task-model.ts';
import { inflightKey } from '../../replication/feed/feed-keys.ts';
import { ApplyLag } from './apply-lag.ts';
import { lagClockOf } from '../../replication/commit-clock.ts';
import { roomReleased } from './room-signal.ts';

/**
 * Which feed a task works on. A job's feed is named after the job, so a job
 * deleted and created again under the same name gets a new feed under the
 * same Redis keys. A task of the deleted job may still run for a moment (its
 * TaskRun re-reads the job every 2 s, and a capture that fails the job does
 * not stop its sibling apply at once), and must then not touch the new feed:
 * an apply would apply the new job's changes a second time into its own
 * destination (the same one, when the job is re-created "from scratch"), a
 * capture would append its stream into the new feed. A feed is identified by
 * its meta `createdAt` (set by its first append): the task adopts the first
 * value it sees. When it differs later, the task re-reads its job: gone or
 * moved on means the feed was replaced (false, and the run is aborted);
 * still this run's means Redis lost the feed's first appends in a crash
 * (AOF everysec) and rebuilt it, and the new value is adopted.
 */
export function feedGeneration(redis: Redis, feedPrefix: string, feedName: string, run: TaskRun): { stillOurs(known?: string | null): Promise<boolean> } {
  const meta = feedKeys(feedPrefix, feedName).meta;
  let born: string | null = null;
  let seen = false;
  return {
    /** `known`: the feed's createdAt as a read just returned it (no round trip of its own). */
    async stillOurs(known?: string | null) {
      const now = known !== undefined ? known : await redis.hget(meta, 'createdAt');
      if (!seen || born === null || now === born) { if (now !== null) { born = now; seen = true; } return true; }
      if (await run.check()) { born = now; return true; }
      return false;
    },
  };
}

/** `feed` whose reads come back empty once the feed is no longer the one the task started on (the run is aborted then). */
function guardedReads(feed: ChangeFeed, generation: { stillOurs(known?: string | null): Promise<boolean> }, run: TaskRun): ChangeFeed {
  return new Proxy(feed, {
    get(target, prop) {
      if (prop === 'readBlocking') {
        return async (...args: Parameters<ChangeFeed['readBlocking']>) => {
          const events = await target.readBlocking(...args);
          if (await generation.stillOurs((target as { lastReadGeneration?: string | null }).lastReadGeneration)) return events;
          run.logger.warn({ feed: target.name }, 'feed replaced (job deleted, a job of the same name created): this apply task stops');
          run.abortForJobChange();
          return [];
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** How often the apply writes its metrics (rows applied, lag) when they changed. */
const METRICS_TICK_MS = 250;

export function applyProcessor(deps: ReplicationDeps): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const run = await TaskRun.begin(p, ctx, deps);
    if (!run) return { skipped: 'job not running in this run' };
    const job = run.job;
    const dest = await deps.connections.config(job.dest_connection_id!);
    // Pieces the capture in this process appended come from memory (local-echo.ts); TRIB_LOCAL_ECHO=0 turns that off.
    const echo = process.env.TRIB_LOCAL_ECHO !== '0';
    const feed = openFeed(deps.redis, job.feed_name!, { prefix: deps.feedPrefix, localEcho: echo });
    const applier = createApplier(dest, { jobId: job.id, rename: job.spec.rename, logger: run.logger, poolSize: Math.max(2, job.spec.parallelWorkers) });
    const counterKey = inflightKey(deps.feedPrefix, job.id);
    const unwatch = echo ? watchEcho(feed.keys.stream) : () => undefined;
    try {
      // Snapshot rows go straight to the destination; changes wait until they are all there.
      while (wantsSnapshot(job.spec, job.state) && !run.signal.aborted) {
        const j = await run.check();
        if (!j || j.state.snapshotDone) break;
        await sleep(SNAPSHOT_POLL_MS, undefined, { signal: run.signal }).catch(() => undefined);
      }
      if (run.signal.aborted) return await run.endAborted();

      const base = Number(job.metrics.rowsApplied ?? 0);
      let applied = 0; let lastSeq: string | undefined;
      let captureDoneSeen = false;
      // The published lag: the last applied batch's, 0 once caught up, the oldest unapplied change's age while stuck (apply-lag.ts).
      const lag = new ApplyLag(job.metrics.lagMs ?? null);
      const lagWarnMs = deps.lagWarnMs ?? 30_000;
      // Carried over from the previous attempt by its published figure: a retried apply warns once per crossing, not per attempt.
      let lagging = (job.metrics.lagMs ?? 0) > lagWarnMs;
      const watchLag = async (lagMs: number | null) => {
        if (lagMs === null) return;
        if (!lagging && lagMs > lagWarnMs) {
          lagging = true;
          const backlog = Number(await deps.redis.get(counterKey).catch(() => 0) ?? 0);
          const stuck = lag.stuck() ? '; the apply has made no progress for over a second (destination locked, slow or unreachable?)' : '';
          const msg = `apply is ${(lagMs / 1000).toFixed(1)} s behind the source (over LAG_WARN_SECONDS=${lagWarnMs / 1000}); ${backlog} transaction(s) captured and not yet applied${stuck}`;
          run.logger.warn({ job: job.name, jobId: job.id, lagMs, backlog }, msg);
          await run.log('warn', msg);
        } else if (lagging && lagMs <= lagWarnMs / 2) {
          lagging = false;
          const msg = `apply caught up: ${(lagMs / 1000).toFixed(1)} s behind the source`;
          run.logger.info({ job: job.name, jobId: job.id, lagMs }, msg);
          await run.log('info', msg);
        }
      };
      // The metrics are written every METRICS_TICK_MS when they changed (and at least every second), so what a
      // reader sees is at most about a tick older than the last apply (or, while stuck, than now); the task's
      // position every second.
      let written: { applied: number; lagMs: number | null; at: number } = { applied: -1, lagMs: null, at: 0 };
      let taskAt = 0; let flushing: Promise<void> | undefined;
      const flush = async (final = false): Promise<void> => {
        if (flushing) {
          if (!final) return;
          await flushing.catch(() => undefined);
        }
        flushing = write(final);
        try { await flushing; } finally { flushing = undefined; }
      };
      const write = async (final: boolean): Promise<void> => {
        const now = Date.now();
        const lagMs = lag.figure(now, written.at);
        await watchLag(lagMs).catch(() => undefined);
        if (final || written.applied !== applied || written.lagMs !== lagMs || now - written.at >= 1000) {
          const w = { applied, lagMs };
          await deps.jobs.mergeMetrics(job.id, { rowsApplied: base + w.applied, appliedSequence: lastSeq, lagMs: w.lagMs });
          written = { ...w, at: Date.now() };
        }
        if (final || now - taskAt >= 1000) {
          await deps.jobs.updateTask(p.taskId, { position: lastSeq ? { sequence: lastSeq } : undefined, progress: { rowsApplied: base + applied } });
          taskAt = now;
        }
      };
      // Changes an earlier attempt left unapplied have waited since their commit (a retry after the destination failed).
      const waiting = await feed.read(job.metrics.appliedSequence ?? null, 1).catch(() => []);
      if (waiting[0]) lag.behind(lagClockOf(waiting[0]));
      const flusher = setInterval(() => { flush().catch(() => undefined); }, METRICS_TICK_MS);
      let outcome;
      try {
        const generation = feedGeneration(deps.redis, deps.feedPrefix, job.feed_name!, run);
        await generation.stillOurs();
        outcome = await runApply({
          feed: guardedReads(feed, generation, run), applier, lanes: job.spec.parallelWorkers, signal: run.signal,
          // From here until onApplied the batch is in hand, unapplied: past STUCK_MS lag is its oldest change's age.
          onBatch: ({ oldestCommitTime }) => lag.batch(oldestCommitTime),
          // The batch's mean: a batch read from a backlog spans up to seconds of commits (5,000 changes), and its
          // last change alone would show the lag of its newest row, not of the rows it applied.
          onApplied: async ({ count, transactions, lastSequence, meanCommitTime }) => {
            applied += count; lastSeq = lastSequence; lag.applied(meanCommitTime);
            deps.metrics?.rowsApplied.inc({ job: job.name }, count);
            // Release ReplChanBufferSize room: capture counted one per appended transaction.
            // Not awaited: a round trip less before the next batch (issue 12). Commands on one connection keep their
            // order, so the reset when drained (below) still comes after it.
            if (transactions > 0) {
              deps.redis.decrby(counterKey, transactions)
                .then((n) => { roomReleased(counterKey); return n < 0 ? deps.redis.set(counterKey, 0) : undefined; })
                .catch((err: unknown) => run.logger.debug({ err: (err as Error).message }, 'releasing ReplChanBufferSize room failed (healed when the feed drains)'));
            }
          },
          // A drained feed means nothing is in flight. Resetting here heals the counter after
          // crashes (an increment or decrement lost between the feed and Redis), which
          // otherwise only grows and finally blocks capture for good.
          onDrained: async () => { lag.drained(); await deps.redis.set(counterKey, 0); roomReleased(counterKey); },
          // A migration is over when a read that started after capture was seen done found the feed drained.
          // "Done now" alone is not enough: the capture appends its last transactions and then marks itself
          // done, and the drained read that preceded this check may have missed those appends.
          shouldFinish: job.type === JobType.Migration ? async () => {
            if (captureDoneSeen) return true;
            captureDoneSeen = (await deps.jobs.get(job.id))?.state.captureDone === true;
            // Seen done: one more read, at once, decides (nothing is appended after it).
            return captureDoneSeen ? 'recheck' : false;
          } : undefined,
          // A migration polls its capture's end on every drained read: short waits end it soon after.
          blockMs: job.type === JobType.Migration ? 50 : undefined,
        });
      } finally {
        clearInterval(flusher);
        await flush(true).catch(() => undefined);
      }
      if (outcome === 'finished') {
        await deps.jobs.updateTask(p.taskId, { status: TaskState.Complete });
        const done = await deps.jobs.transition(job.id, [JobStatus.Running], JobStatus.Complete, { finished: true, reason: 'migration complete' });
        if (done) {
          await deps.jobs.mergeProgress(job.id, { phase: 'complete' });
          run.job = (await deps.jobs.get(job.id)) ?? done;
          await run.log('info', 'migration complete: snapshot copied and changes caught up');
          run.publishJob('status', 'migration complete');
        }
        run.finish();
        return { complete: true };
      }
      return await run.endAborted();
    } catch (err) {
      if (run.signal.aborted) return await run.endAborted();
      return await run.fail(err);
    } finally {
      unwatch();
      run.finish();
      await applier.close().catch(() => undefined);
      await (feed as unknown as { close?: () => Promise<void> }).close?.();
    }
  };
}
