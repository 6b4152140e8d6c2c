/**
 * The apply task (Udup "Dest"): waits for the snapshot, then applies the
 * job's feed to the destination in ParallelWorkers lanes (see
 * replication/pipeline/apply-runner.ts). A migration job completes once the
 * capture caught up and the feed is drained.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createApplier } from '../../replication/factory.ts';
import { openFeed } from '../../replication/feed/feed-registry.ts';
import { runApply } from '../../replication/pipeline/apply-runner.ts';
import { JobStatus, JobType } from '../../services/job-model.ts';
import type { JobTaskPayload } from '../task-payloads.ts';
import type { TaskProcessor } from '../worker-host.ts';
import { TaskRun, type ReplicationDeps } from './task-run.ts';

export function applyProcessor(deps: ReplicationDeps): TaskProcessor {
  return async (payload, ctx) => {
    const p = payload as JobTaskPayload;
    const run = await TaskRun.begin(p, ctx, deps);
    if (!run) return { skipped: 'job not running in this run' };
    const job = run.job;
    const dest = await deps.connections.config(job.dest_connection_id!);
    const feed = openFeed(deps.redis, job.feed_name!, { prefix: deps.feedPrefix });
    const applier = createApplier(dest, { jobId: job.id, rename: job.spec.rename, logger: run.logger, poolSize: Math.max(2, job.spec.parallelWorkers) });
    const counterKey = `${deps.feedPrefix}:job:{${job.id}}:inflight`;
    try {
      // Snapshot rows go straight to the destination; changes wait until they are all there.
      while (job.spec.snapshot && !run.signal.aborted) {
        const j = await run.check();
        if (!j || j.state.snapshotDone) break;
        await sleep(500, undefined, { signal: run.signal }).catch(() => undefined);
      }
      if (run.signal.aborted) return await run.endAborted();

      const base = Number(job.metrics.rowsApplied ?? 0);
      let applied = 0; let lastSeq: string | undefined; let lagMs: number | null = null;
      let captureDoneSeen = false;
      const flush = async () => {
        await deps.jobs.mergeMetrics(job.id, { rowsApplied: base + applied, appliedSequence: lastSeq, lagMs });
        await deps.jobs.updateTask(p.taskId, { position: lastSeq ? { sequence: lastSeq } : undefined, progress: { rowsApplied: base + applied } });
      };
      const flusher = setInterval(() => { flush().catch(() => undefined); }, 1000);
      let outcome;
      try {
        outcome = await runApply({
          feed, applier, lanes: job.spec.parallelWorkers, signal: run.signal,
          onApplied: async ({ count, transactions, lastSequence, lastCommitTime }) => {
            applied += count; lastSeq = lastSequence; lagMs = Math.max(0, Date.now() - lastCommitTime);
            deps.metrics?.rowsApplied.inc({ job: job.name }, count);
            // Release ReplChanBufferSize room: capture counted one per appended transaction.
            if (transactions > 0) {
              const n = await deps.redis.decrby(counterKey, transactions);
              if (n < 0) await deps.redis.set(counterKey, 0);
            }
          },
          // A drained feed means nothing is in flight. Resetting here heals the counter after
          // crashes (an increment or decrement lost between the feed and Redis), which
          // otherwise only grows and finally blocks capture for good.
          onDrained: async () => { await deps.redis.set(counterKey, 0); },
          // A migration is over when a read that started after capture was seen done found the feed drained.
          // "Done now" alone is not enough: the capture appends its last transactions and then marks itself
          // done, and the drained read that preceded this check may have missed those appends.
          shouldFinish: job.type === JobType.Migration ? async () => {
            if (captureDoneSeen) return true;
            captureDoneSeen = (await deps.jobs.get(job.id))?.state.captureDone === true;
            return false;
          } : undefined,
        });
      } finally {
        clearInterval(flusher);
        await flush().catch(() => undefined);
      }
      if (outcome === 'finished') {
        await deps.jobs.updateTask(p.taskId, { status: 'complete' });
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
      run.finish();
      await applier.close().catch(() => undefined);
      await (feed as unknown as { close?: () => Promise<void> }).close?.();
    }
  };
}
